package metrics

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// FuzzParseThreshold: any input parses or is an error naming a column, a
// parsed threshold checks any summary without panicking, and parsing its
// text again gives the same threshold.
func FuzzParseThreshold(f *testing.F) {
	for _, s := range []string{"rtt.p99 < 50ms", "errors == 0", "connect.failed < 1%",
		"msgs.sent.rate >= 1e3", "rtt.p999 != 1h2m", "a.b<=-0.5%", "x > .5", "rtt.max == 0"} {
		f.Add(s)
	}
	sum := Summary{Version: Version, Elapsed: 2,
		Counters: map[string]int64{"errors": 1, "a.b": 5, "a.total": 0, "msgs.sent": 9},
		Gauges:   map[string]float64{"x": 3},
		Timings:  map[string]HistogramData{"rtt": {Layout: Layout}}}
	var h Histogram
	h.Observe(time.Millisecond)
	sum.Timings["connect"] = h.Data()
	f.Fuzz(func(t *testing.T, expr string) {
		th, err := ParseThreshold(expr)
		if err != nil {
			if !strings.Contains(err.Error(), "column ") {
				t.Fatalf("error without a column: %v", err)
			}
			return
		}
		if th.Metric == "" || th.Op == "" {
			t.Fatalf("%q parsed to %+v", expr, th)
		}
		th.Check(sum)
		again, err := ParseThreshold(th.Expr)
		if err != nil || again != th {
			t.Fatalf("%q parsed again: %+v, %v", th.Expr, again, err)
		}
	})
}

// FuzzReadSummary: any input reads or is an error; a summary read writes
// back to a file that reads the same, and prints, merges and answers
// quantiles without panicking.
func FuzzReadSummary(f *testing.F) {
	var b bytes.Buffer
	fleet("1/2", time.Unix(1e9, 0).UTC(), 3, 10, 1, time.Millisecond, 2*time.Second, 300).WriteJSON(&b)
	f.Add(b.String())
	f.Add(`{"Version": 1}`)
	f.Add(`{"Version": 1, "Timings": {"x": {"Layout": "` + Layout + `", "Count": 1, "Sum": 5, "Min": 5, "Max": 5, "Buckets": [[5, 1]]}}}`)
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ReadSummary(strings.NewReader(in))
		if err != nil {
			return
		}
		var one, two bytes.Buffer
		if err := s.WriteJSON(&one); err != nil {
			t.Fatal(err)
		}
		back, err := ReadSummary(bytes.NewReader(one.Bytes()))
		if err != nil {
			t.Fatalf("written back, it does not read: %v\n%s", err, one.String())
		}
		back.WriteJSON(&two)
		if one.String() != two.String() {
			t.Fatalf("not the same once read back:\n%s\n%s", one.String(), two.String())
		}
		_ = s.Text()
		for _, d := range s.Timings {
			for _, q := range []float64{0, 0.5, 0.99, 1} {
				if v := d.Quantile(q); d.Count > 0 && (v < d.Min || v > d.Max) {
					t.Fatalf("quantile %v = %v outside [%v, %v]", q, v, d.Min, d.Max)
				}
			}
		}
		if s.Shard == "" && len(s.Shards) == 0 {
			if _, err := Merge(s, s); err != nil {
				t.Fatalf("merging a summary with itself: %v", err)
			}
		}
	})
}
