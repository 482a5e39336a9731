package main

// The examples of simulate's metrics flags (--report, --summary,
// --threshold) in its --help (docs/cli.md) and in docs/fleet.md's
// "Reports", run as printed (see docs_e2e_test.go).

import (
	"encoding/json"
	"os"
	"strings"
	"time"

	"github.com/wirecat-dev/wirecat/metrics"
)

func init() {
	docCases = append(docCases, fleetMetricsDocCases...)
}

var fleetMetricsDocCases = []docCase{
	{
		name: "simulate-metrics-help",
		cmds: []string{"wirecat simulate scripts/thermo.lua -n 1000 --duration 1m --report 5s --summary run.json --threshold 'connect.p99 < 50ms' --threshold 'errors == 0'"},
		run: func(e *docEnv, c []string) {
			t := e.t
			// A shorter, smaller run of the same command.
			e.sub("-n 1000 --duration 1m --report 5s", "-n 200 --duration 3s --report 1s")
			out, errOut, code := e.run(c[0], "", 60*time.Second)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
			f, err := os.Open(e.file("run.json"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s, err := metrics.ReadSummary(f)
			if err != nil {
				t.Fatal(err)
			}
			if s.Counters["devices.started"] != 200 || s.Counters["devices.stopped"] != 200 || s.Timings["connect"].Count != 200 {
				t.Errorf("summary counters %v, connect count %d", s.Counters, s.Timings["connect"].Count)
			}
			// The built-in sink printed what the boards sent, one reading a line.
			if n := int64(strings.Count(out, "\n")); n != s.Counters["msgs.sent"] {
				t.Errorf("the sink printed %d readings, the summary says %d sent", n, s.Counters["msgs.sent"])
			}
			wantContains(t, "stderr", errOut, "threshold errors == 0: met (0)", "threshold connect.p99 < 50ms: ", " up, ")
		},
	},
}

// reportLines are the report objects among -o json's lines.
func reportLines(out string) []map[string]any {
	var rs []map[string]any
	for _, line := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["event"] == "report" {
			rs = append(rs, m)
		}
	}
	return rs
}
