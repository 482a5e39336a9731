package metrics

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseThresholdErrors(t *testing.T) {
	for expr, want := range map[string]string{
		"":                    "column 1: empty",
		"   ":                 "column 4: empty",
		"< 5":                 `column 1: '<' cannot start a metric name`,
		"rtt.p99":             "column 8: missing operator",
		"rtt.p99 50ms":        `column 9: want an operator (< <= > >= == !=), not "50ms"`,
		"errors = 0":          "column 8: '=' is not an operator: write ==",
		"errors =< 0":         "column 8: '=' is not an operator",
		"errors << 0":         `column 9: one operator only: "<" then "<"`,
		"errors <":            `column 9: missing value after "<"`,
		"errors < 0 1":        `column 11: unexpected "1" after the value "0"`,
		"errors < zero":       `column 10: "zero" is not a number, a duration`,
		"errors < 5ms":        "a duration compares with a timing statistic",
		"rtt.p99 < 50":        "rtt.p99 is a timing: give the value a unit, e.g. 50ms",
		"rtt.p99 < 1%":        "rtt.p99 is a timing: compare it with a duration",
		"rtt.count < 5ms":     "a duration compares with a timing statistic",
		"errors < 1.2.3%":     `"1.2.3%" is not a percentage`,
		"rtt..p99 < 5ms":      "empty part between dots",
		"timeouts < 1%":       "column 1: timeouts has no base to take a percentage of",
		"msgs.sent.rate < 1%": "has no base",
		"rtt.p99 < 5xs":       `"5xs" is not a number, a duration`,
		"errors < NaN":        `"NaN" is not a number, a duration`,
	} {
		_, err := ParseThreshold(expr)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseThreshold(%q): error %v, want %q", expr, err, want)
		}
	}
}

func TestThresholdCheck(t *testing.T) {
	s := Summary{Version: Version, Elapsed: 10,
		Counters: map[string]int64{
			"connect.attempts": 2000, "connect.failed": 10, "errors": 0, "msgs.sent": 5000,
			"msgs.recv": 4990, "devices.started": 2000, "devices.failed": 0, "rtt.count": 7,
			"http.requests": 3, "http.total": 300, "quic.lost": 1, "noop.failed": 0, "noop.attempts": 0,
		},
		Gauges:  map[string]float64{"devices.up": 1990},
		Timings: map[string]HistogramData{},
	}
	var rtt, empty Histogram
	for i := 1; i <= 1000; i++ {
		rtt.Observe(time.Duration(i) * 100 * time.Microsecond) // 0.1ms .. 100ms
	}
	s.Timings["rtt"], s.Timings["empty"] = rtt.Data(), empty.Data()
	for _, tc := range []struct {
		expr   string
		met    bool
		actual string
	}{
		{"errors == 0", true, "0"},
		{"errors != 0", false, "0"},
		{"errors < 1%", true, "0% (0 of 5000 msgs.sent)"},
		{"connect.failed < 1%", true, "0.5% (10 of 2000 connect.attempts)"},
		{"connect.failed < 0.5%", false, "0.5% (10 of 2000 connect.attempts)"},
		{"connect.failed <= 0.5%", true, "0.5% (10 of 2000 connect.attempts)"},
		{"msgs.recv >= 99%", true, "99.8% (4990 of 5000 msgs.sent)"},
		{"devices.failed == 0%", true, "0% (0 of 2000 devices.started)"},
		{"http.requests > 0.5%", true, "1% (3 of 300 http.total)"},
		{"quic.lost < 1%", false, "no base: neither quic.attempts nor quic.total in the summary"},
		{"noop.failed < 1%", false, "0 of 0 noop.attempts"},
		{"reconnects < 1%", false, "absent"},
		{"rtt.p99 < 100ms", true, "98.8ms"},
		{"rtt.p99 < 98ms", false, "98.8ms"},
		{"rtt.p50 <= 50.2ms", true, "49.9ms"},
		{"rtt.p90 > 89ms", true, "89.9ms"},
		{"rtt.p95 < 96ms", true, "95.2ms"},
		{"rtt.p999 < 1s", true, "99.9ms"},
		{"rtt.max == 100ms", true, "100ms"},
		{"rtt.min >= 100µs", true, "100µs"},
		{"rtt.mean < 51ms", true, "50.0ms"},
		{"rtt.count == 7", true, "7"}, // the counter named rtt.count comes first
		{"empty.p99 < 1s", false, "no samples"},
		{"empty.count == 0", true, "0"},
		{"rtt.p99 == 0", false, "98.8ms"},
		{"msgs.sent.rate >= 500", true, "500/s"},
		{"msgs.sent.rate > 500", false, "500/s"},
		{"devices.up > 1000", true, "1990"},
		{"devices.up > 1%", false, "devices.up is a gauge: compare it with a number"},
		{"rtt.p99x < 5", false, "absent"},
		{"rtt.p90 < 5ms", false, "89.9ms"},
		{"errs == 0", false, "absent"}, // a typo does not pass
		{"rt.p99 < 1h", false, "absent"},
		{"  errors   ==   0  ", true, "0"},
		{"errors<=0", true, "0"},
		{"msgs.sent > 4.9e3", true, "5000"},
	} {
		th, err := ParseThreshold(tc.expr)
		if err != nil {
			t.Errorf("ParseThreshold(%q): %v", tc.expr, err)
			continue
		}
		met, actual := th.Check(s)
		if met != tc.met || actual != tc.actual {
			t.Errorf("%q: met %v (%s), want %v (%s)", tc.expr, met, actual, tc.met, tc.actual)
		}
	}
}

func TestCheckAll(t *testing.T) {
	s := Summary{Version: Version, Counters: map[string]int64{"errors": 2}}
	ts, err := ParseThresholds([]string{"errors == 0", "errors < 5", "errros == 0"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = CheckAll(&out, s, ts)
	var u *UnmetError
	if !errors.As(err, &u) || u.Unmet != 2 || u.Of != 3 || err.Error() != "2 of 3 thresholds not met" {
		t.Fatalf("CheckAll: %v", err)
	}
	want := "threshold errors == 0: NOT met (2)\n" +
		"threshold errors < 5: met (2)\n" +
		"threshold errros == 0: NOT met (absent)\n"
	if out.String() != want {
		t.Fatalf("printed\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	if err := CheckAll(&out, s, ts[1:2]); err != nil || out.String() != "threshold errors < 5: met (2)\n" {
		t.Fatalf("all met: %v %q", err, out.String())
	}
	if _, err := ParseThresholds([]string{"errors == 0", "bad"}); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("ParseThresholds: %v", err)
	}
}

func TestFmtPercent(t *testing.T) {
	for p, want := range map[float64]string{0: "0", 100: "100", 0.5: "0.5", 99.98416: "99.98",
		99.99999: "99.99999", 1e-4: "0.0001", 12.3456: "12.3", 150: "150"} {
		if got := fmtPercent(p); got != want {
			t.Errorf("fmtPercent(%v) = %q, want %q", p, got, want)
		}
	}
}
