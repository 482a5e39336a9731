package main

// The examples of docs/fleet.md's Metrics, Summary file and Thresholds
// sections and of `wirecat summary --help` (docs/cli.md), run as printed
// (see docs_e2e_test.go) on shard files written here.

import (
	"strings"
	"time"

	"github.com/wirecat-dev/wirecat/metrics"
)

func init() {
	docFiles = append(docFiles, "docs/fleet.md")
	docCases = append(docCases, summaryDocCases...)
}

var summaryDocCases = []docCase{
	{
		name: "fleet-summary",
		cmds: []string{
			"wirecat summary shard-0.json shard-1.json",
			"wirecat summary shard-*.json -o json > fleet.json",
			"wirecat summary shard-*.json --threshold 'rtt.p99 < 50ms'",
			"wirecat summary shard-*.json --threshold 'connect.failed < 1%'",
			"wirecat summary shard-*.json --threshold 'errors == 0' --threshold 'msgs.recv >= 99.9%'",
		},
		run: func(e *docEnv, c []string) {
			t := e.t
			_, totals, all := writeShards(t, e.dir, 2)
			out := e.mustRun(c[0], "")
			if !strings.HasPrefix(out, "summary: 1m0s from 2026-11-29 12:00:00Z, 2 of 2 shards\n") ||
				!hasRow(out, []string{"msgs.sent", "120000", "2000/s"}) {
				t.Fatalf("the text summary:\n%s", out)
			}
			e.mustRun(c[1], "")
			m, err := metrics.ReadSummary(strings.NewReader(e.read("fleet.json")))
			if err != nil || m.Counters["msgs.sent"] != totals["msgs.sent"] || m.Timings["rtt"].Count != all.Count() {
				t.Fatalf("fleet.json: %v, %v", err, m.Counters)
			}
			p99 := all.Quantile(0.99)
			if p99 >= 50*time.Millisecond {
				t.Fatalf("the shards' p99 is %v: the example wants one under 50ms", p99)
			}
			for i, want := range []string{
				"threshold rtt.p99 < 50ms: met (" + metrics.FormatDuration(p99) + ")\n",
				"threshold connect.failed < 1%: met (0.05% (1 of 2001 connect.attempts))\n",
				"threshold errors == 0: met (0)\nthreshold msgs.recv >= 99.9%: met (99.98% (119981 of 120000 msgs.sent))\n",
			} {
				if out := e.mustRun(c[2+i], ""); !strings.HasSuffix(out, want) {
					t.Errorf("%s:\n%s\nwant it to end with\n%s", c[2+i], out, want)
				}
			}
			// The same threshold on a slower fleet: NOT met, exit 3.
			out, _, code := e.run("wirecat summary shard-*.json --threshold 'rtt.p99 < 20ms'", "", 10*time.Second)
			if code != 3 || !strings.Contains(out, "threshold rtt.p99 < 20ms: NOT met (") {
				t.Errorf("an unmet threshold: exit %d\n%s", code, out)
			}
		},
	},
}
