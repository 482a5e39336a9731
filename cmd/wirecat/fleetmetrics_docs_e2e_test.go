package main

// The examples of simulate's metrics flags (--report, --summary,
// --threshold) in its --help (docs/cli.md) and in docs/fleet.md's
// "Reports", run as printed (see docs_e2e_test.go).

import (
	"encoding/json"
	"os"
	"strconv"
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
			// On a loaded machine 200 connects at once may take longer
			// than 50ms at p99: then that threshold, and only that one,
			// is unmet, and the exit is 3.
			slow := code == exitUnmet && strings.Contains(errOut, "threshold connect.p99 < 50ms: NOT met") &&
				strings.Count(errOut, "NOT met") == 1
			if code != 0 && !slow {
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
	{
		name: "fleet-reports",
		cmds: []string{
			"wirecat simulate scripts/thermo.lua -n 100 --duration 5s --report 1s",
			`wirecat simulate scripts/thermo.lua -n 100 --duration 5s --report 1s -o json | jq -c 'select(.event == "report") | .rates["msgs.sent"]'`,
			"wirecat simulate scripts/thermo.lua -n 100 --duration 5s --report-file reports.jsonl",
		},
		run: func(e *docEnv, c []string) {
			t := e.t
			e.sub("--duration 5s", "--duration 3s")
			// The line on stderr, one an interval; the readings on stdout.
			out, errOut, code := e.run(c[0], "", 60*time.Second)
			if code != 0 || strings.Count(errOut, " up, ") < 2 || !strings.Contains(errOut, "100 devices started") ||
				strings.Count(out, "\n") < 100 {
				t.Fatalf("exit %d, %d readings\n%s", code, strings.Count(out, "\n"), errOut)
			}
			// JSON on stdout: jq keeps a rate per report.
			need(t, "jq")
			out, errOut, code = e.run(c[1], "", 60*time.Second)
			rates := strings.Fields(out)
			if code != 0 || len(rates) < 2 || strings.Contains(errOut, " up, ") {
				t.Fatalf("exit %d, rates %q\n%s", code, rates, errOut)
			}
			for _, r := range rates {
				if v, err := strconv.ParseFloat(r, 64); err != nil || v < 0 || v > 1000 {
					t.Errorf("rate %q of 100 devices sending one a second", r)
				}
			}
			// The file: the same objects; stderr has no report line.
			_, errOut, code = e.run(c[2], "", 60*time.Second)
			rs := reportLines(e.read("reports.jsonl"))
			if code != 0 || len(rs) < 2 || strings.Contains(errOut, " up, ") {
				t.Fatalf("exit %d, %d reports\n%s", code, len(rs), errOut)
			}
			// The first report, a second in: every device running (the
			// last may be taken as the deadline stops them).
			first := rs[0]
			if first["running"] != float64(100) || first["counters"].(map[string]any)["devices.started"] != float64(100) {
				t.Errorf("first report %v", first)
			}
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
