package sim

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/metrics"
	"github.com/wirecat-dev/wirecat/script"
)

// TestSinceIsTheInterval: the samples between two snapshots of a timing
// have the quantiles of those samples alone, as a histogram of just them.
func TestSinceIsTheInterval(t *testing.T) {
	var h, later metrics.Histogram
	for i := 1; i <= 1000; i++ {
		h.Observe(time.Duration(i) * time.Microsecond) // the earlier interval: 1µs..1ms
	}
	prev := h.Data()
	for i := 1; i <= 500; i++ {
		d := 50*time.Millisecond + time.Duration(i)*time.Microsecond
		h.Observe(d)
		later.Observe(d)
	}
	got, want := since(h.Data(), prev), later.Data()
	if got.Count != want.Count {
		t.Fatalf("count %d, want %d", got.Count, want.Count)
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99} {
		// The same bucket; only the exact min and max, which an
		// interval does not know, may keep the latter closer.
		if g, w := got.Quantile(q), want.Quantile(q); g < w*99/100 || g > w*101/100 {
			t.Errorf("p%v %v, want %v within 1%%", q*100, g, w)
		}
	}
	if empty := since(prev, prev); empty.Count != 0 {
		t.Errorf("nothing new, yet %d samples", empty.Count)
	}
}

// TestReportLines: a fleet run with Report writes a JSON object per
// interval whose counters grow to the end's and whose rates are the
// interval's, and a text line each when asked.
func TestReportLines(t *testing.T) {
	p, err := script.Compile("r.lua", []byte(`
for i = 1, 6 do metrics.count("ticks"); metrics.observe("work", 0.003); sleep(0.1) end`))
	if err != nil {
		t.Fatal(err)
	}
	var js, text syncBuf
	sum, err := Run(context.Background(), Config{Program: p, Count: 3, NoSink: true, Report: 200 * time.Millisecond,
		ReportText: true, ReportJSON: &js, Stderr: &text})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("%d reports in 0.6s at 200ms:\n%s", len(lines), js.String())
	}
	var first, last Report
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatal(err)
		}
		if last.Event != "report" || last.Running > 3 || last.Interval < 0.15 || last.Interval > 1 {
			t.Errorf("report %+v", last)
		}
		if i == 0 {
			first = last
		}
	}
	if c := last.Counters["ticks"]; c < 3 || c > sum.Metrics.Counters["ticks"] {
		t.Errorf("last report's ticks %d, the end's %d", c, sum.Metrics.Counters["ticks"])
	}
	// The first interval is all sending; the last may end as the devices do.
	if r := first.Rates["ticks"]; r < 10 || r > 50 {
		t.Errorf("ticks rate %v, want about 30/s (3 devices, 10 a second)", r)
	}
	if w := first.Timings["work"]; w.P99 < 0.00299 || w.P99 > 0.00301 {
		t.Errorf("work %+v", w)
	}
	if n := strings.Count(text.String(), "wirecat: "); n != len(lines) || !strings.Contains(text.String(), "work p99 3.00ms") {
		t.Errorf("%d text lines for %d reports:\n%s", n, len(lines), text.String())
	}
}
