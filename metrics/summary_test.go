package metrics

import (
	"bytes"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fleet returns a summary such as a shard writes.
func fleet(shard string, started time.Time, elapsed float64, attempts, failed int64, rtts ...time.Duration) Summary {
	s := NewSet()
	s.Counter("connect.attempts").Add(attempts)
	s.Counter("connect.failed").Add(failed)
	s.Counter("errors").Add(0)
	s.Gauge("devices.up").Set(float64(attempts - failed))
	for _, d := range rtts {
		s.Histogram("rtt").Observe(d)
	}
	sum := s.Summary()
	sum.Shard, sum.Started, sum.Elapsed = shard, started, elapsed
	return sum
}

func TestJSONRoundTrip(t *testing.T) {
	s := NewSet()
	s.Counter("msgs.sent").Add(12345)
	s.Gauge("devices.up").Set(99.5)
	for i := range 5000 {
		s.Histogram("rtt").Observe(time.Duration(i*i) * time.Microsecond)
	}
	s.Histogram("empty")
	want := s.Summary()
	want.Shard = "3/8"
	var b bytes.Buffer
	if err := want.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSummary(&b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the summary:\n got %+v\nwant %+v", got, want)
	}
}

func TestMergeShards(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	a := fleet("0/3", t0, 60, 1000, 5, 10*time.Millisecond, 20*time.Millisecond)
	b := fleet("2/3", t0.Add(2*time.Second), 60, 500, 0, 30*time.Millisecond)
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Counters["connect.attempts"] != 1500 || m.Counters["connect.failed"] != 5 || m.Gauges["devices.up"] != 1495 {
		t.Fatalf("counters %v gauges %v", m.Counters, m.Gauges)
	}
	if r := m.Timings["rtt"]; r.Count != 3 || r.Min != 10*time.Millisecond || r.Max != 30*time.Millisecond || r.Sum != 60*time.Millisecond {
		t.Fatalf("rtt %+v", r)
	}
	if !m.Started.Equal(t0) || m.Elapsed != 62 || m.Shard != "" || !reflect.DeepEqual(m.Shards, []string{"0/3", "2/3"}) {
		t.Fatalf("started %v elapsed %v shard %q shards %v", m.Started, m.Elapsed, m.Shard, m.Shards)
	}
	if txt := m.Text(); !strings.Contains(txt, "2 of 3 shards (missing 1/3)") {
		t.Errorf("the text does not say a shard is missing:\n%s", txt)
	}
	// Merging a merge with the missing shard completes it.
	c := fleet("1/3", t0, 10, 1, 1)
	all, err := Merge(m, c)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(all.Shards, []string{"0/3", "1/3", "2/3"}) || all.Counters["connect.attempts"] != 1501 {
		t.Fatalf("shards %v counters %v", all.Shards, all.Counters)
	}

	for name, tc := range map[string]struct {
		in   []Summary
		want string
	}{
		"nothing":       {nil, "no summary"},
		"twice":         {[]Summary{a, b, a}, "shard 0/3 appears twice"},
		"other fleet":   {[]Summary{a, fleet("1/4", t0, 1, 1, 0)}, "not the same fleet"},
		"other version": {[]Summary{a, {Version: 2}}, "version 2"},
	} {
		if _, err := Merge(tc.in...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
}

func TestText(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var rtts []time.Duration
	for i := 1; i <= 100; i++ {
		rtts = append(rtts, time.Duration(i)*time.Millisecond)
	}
	txt := fleet("1/4", t0, 50, 1000, 10, rtts...).Text()
	for _, want := range []string{
		"summary: 50.0s from 2026-11-29 12:00:00Z, shard 1/4\n",
		"  counter                 total         rate\n",
		"  connect.attempts         1000       20.0/s\n",
		"  connect.failed             10      0.200/s\n",
		"  errors                      0          0/s\n",
		"  gauge                   level\n  devices.up                990\n",
		"  timing                  count      p50      p90      p99      max\n",
		"  rtt                       100   49.9ms   89.9ms   98.8ms    100ms\n",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("no %q in\n%s", want, txt)
		}
	}
}

func TestReadSummaryErrors(t *testing.T) {
	good := func() string {
		var b bytes.Buffer
		fleet("0/2", time.Unix(0, 0).UTC(), 1, 10, 1, time.Millisecond, time.Second).WriteJSON(&b)
		return b.String()
	}()
	for name, tc := range map[string]struct{ in, want string }{
		"empty":         {"", "empty"},
		"not JSON":      {"hello\n", "line 1: invalid character"},
		"cut short":     {good[:len(good)/2], "the file ends early"},
		"syntax line 3": {"{\n\"Version\": 1,\n\"Counters\": {,}\n}", "line 3:"},
		"wrong type":    {"{\n\"Version\": 1,\n\"Counters\": {\"a\": \"x\"}}", "line 3: Counters holds a string, want int64"},
		"foreign":       {`{"metrics": {"http_reqs": 1}}`, "not a wirecat summary"},
		"future":        {`{"Version": 9}`, "version 9"},
		"bad shard":     {`{"Version": 1, "Shard": "4/4"}`, `shard "4/4"`},
		"bad elapsed":   {`{"Version": 1, "Elapsed": -1}`, "Elapsed"},
		"other layout":  {strings.Replace(good, Layout, "hdr", 1), `layout "hdr"`},
		"count":         {strings.Replace(good, `"Count": 2`, `"Count": 3`, 1), "Count says 3"},
		"boundary":      {strings.Replace(good, "[998244352, 1]", "[998244353, 1]", 1), "not a bucket boundary"},
	} {
		_, err := ReadSummary(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
	if _, err := ReadSummary(strings.NewReader(good)); err != nil {
		t.Fatalf("the good file: %v\n%s", err, good)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0ns", 812: "812ns", 812300: "812µs", 1234567: "1.23ms", 41234567: "41.2ms",
		2500 * time.Millisecond: "2.50s", 200 * time.Second: "3m20s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%d) = %q, want %q", d, got, want)
		}
	}
}

// A gauge set to NaN or an infinity keeps its level: the file stays JSON.
func TestGaugeStaysFinite(t *testing.T) {
	s := NewSet()
	g := s.Gauge("ratio")
	g.Set(2)
	g.Set(math.NaN())
	g.Add(math.Inf(1))
	g.Set(math.Inf(-1))
	g.Add(-0.5)
	if g.Load() != 1.5 {
		t.Fatalf("level %v, want 1.5", g.Load())
	}
	if err := s.Summary().WriteJSON(io.Discard); err != nil {
		t.Fatal(err)
	}
}
