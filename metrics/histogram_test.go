package metrics

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

// The layout: every value falls in the bucket whose bounds hold it, and a
// bucket above the linear part is at most 1/128 of its lower bound wide.
func TestBucketLayout(t *testing.T) {
	check := func(v int64) {
		t.Helper()
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, numBuckets)
		}
		lower, width := bucketBounds(i)
		if v < lower || v >= lower+width {
			t.Fatalf("%d in bucket %d = [%d, %d)", v, i, lower, lower+width)
		}
		if v >= linearTop && float64(width)/float64(lower) > 1.0/subCount {
			t.Fatalf("bucket %d = [%d, +%d) is wider than 1/%d of its start", i, lower, width, subCount)
		}
	}
	for v := int64(0); v < 4*linearTop; v++ {
		check(v)
	}
	for e := 8; e <= topExp+1; e++ {
		p := int64(1) << e
		for _, v := range []int64{p - 1, p, p + 1, p + p/2} {
			if v <= maxValue {
				check(v)
			}
		}
	}
	check(maxValue)
	// Consecutive buckets tile the line with no gap and no overlap.
	for i := 1; i < numBuckets; i++ {
		lo, w := bucketBounds(i - 1)
		next, _ := bucketBounds(i)
		if lo+w != next {
			t.Fatalf("bucket %d ends at %d, bucket %d starts at %d", i-1, lo+w, i, next)
		}
	}
	if lo, w := bucketBounds(numBuckets - 1); lo+w-1 != maxValue {
		t.Fatalf("the last bucket ends at %d, not at the largest duration", lo+w-1)
	}
}

// exactQuantile is the nearest-rank quantile of sorted samples: the
// ceil(q·n)-th smallest, the definition Quantile estimates.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	r := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(r, 1), len(sorted))-1]
}

// distributions of durations that fleets see: flat, long-tailed, and two
// populations (cache hits and misses).
var distributions = map[string]func(r *rand.Rand) time.Duration{
	"uniform 1ms-100ms": func(r *rand.Rand) time.Duration {
		return time.Millisecond + time.Duration(r.Int64N(int64(99*time.Millisecond)))
	},
	"uniform 0-2µs": func(r *rand.Rand) time.Duration {
		return time.Duration(r.Int64N(2000))
	},
	"log-normal median 5ms": func(r *rand.Rand) time.Duration {
		return time.Duration(math.Exp(math.Log(5e6) + 1.2*r.NormFloat64()))
	},
	"bimodal 2ms and 80ms": func(r *rand.Rand) time.Duration {
		if r.Float64() < 0.7 {
			return time.Duration(2e6 + 2e5*r.NormFloat64())
		}
		return time.Duration(80e6 + 5e6*r.NormFloat64())
	},
}

// Percentiles are within 1% of the exact ones computed from the raw
// samples (the layout promises 1/256).
func TestQuantileWithinOnePercent(t *testing.T) {
	const n = 200_000
	for name, draw := range distributions {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(len(name))))
			var h Histogram
			samples := make([]time.Duration, n)
			for i := range samples {
				samples[i] = max(draw(r), 0)
				h.Observe(samples[i])
			}
			slices.Sort(samples)
			if h.Count() != n || h.Min() != samples[0] || h.Max() != samples[n-1] {
				t.Fatalf("count %d min %v max %v, want %d %v %v", h.Count(), h.Min(), h.Max(), n, samples[0], samples[n-1])
			}
			worst := 0.0
			for _, q := range []float64{0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999} {
				exact, got := exactQuantile(samples, q), h.Quantile(q)
				diff := math.Abs(float64(got - exact))
				if diff > 0.01*float64(exact) {
					t.Errorf("q=%v: %v, exact %v: %.2f%% off", q, got, exact, 100*diff/float64(exact))
				}
				if exact > 0 {
					worst = max(worst, diff/float64(exact))
				}
			}
			t.Logf("worst relative error %.3f%% over %d samples", 100*worst, n)
		})
	}
}

// K histograms merged equal, exactly, one histogram of all the samples.
func TestMergeIsExact(t *testing.T) {
	const k, n = 7, 30_000
	r := rand.New(rand.NewPCG(7, 7))
	var all Histogram
	parts := make([]Summary, k)
	for i := range parts {
		var h Histogram
		draw := distributions["bimodal 2ms and 80ms"]
		if i%2 == 1 {
			draw = distributions["log-normal median 5ms"]
		}
		for range n + i*1000 {
			d := draw(r)
			h.Observe(d)
			all.Observe(d)
		}
		parts[i] = Summary{Version: Version, Timings: map[string]HistogramData{"rtt": h.Data()}}
	}
	m, err := Merge(parts...)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Timings["rtt"], all.Data(); !reflect.DeepEqual(got, want) {
		t.Fatalf("merged histogram differs from the histogram of all samples:\ncount %d/%d sum %v/%v min %v/%v max %v/%v buckets %d/%d",
			got.Count, want.Count, got.Sum, want.Sum, got.Min, want.Min, got.Max, want.Max, len(got.Buckets), len(want.Buckets))
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		if m.Timings["rtt"].Quantile(q) != all.Quantile(q) {
			t.Errorf("q=%v: merged %v, whole %v", q, m.Timings["rtt"].Quantile(q), all.Quantile(q))
		}
	}
}

// Observers on many goroutines lose nothing, and a snapshot taken meanwhile
// is consistent (its count is its buckets' sum: ReadSummary's check).
func TestHistogramConcurrent(t *testing.T) {
	var h Histogram
	const g, each = 8, 20_000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	snapshots := make(chan error, 1)
	go func() {
		var err error
		for {
			select {
			case <-stop:
				snapshots <- err
				return
			default:
			}
			if e := h.Data().check(); e != nil && err == nil {
				err = e
			}
		}
	}()
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				h.Observe(time.Duration(i*each+j) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-snapshots; err != nil {
		t.Errorf("a snapshot taken while observing: %v", err)
	}
	if h.Count() != g*each || h.Min() != 0 || h.Max() != (g*each-1)*time.Microsecond {
		t.Fatalf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
	}
	if err := h.Data().check(); err != nil {
		t.Fatal(err)
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Min() != 0 || h.Count() != 0 {
		t.Fatal("an empty histogram is not all zero")
	}
	h.Observe(-5)            // counts as 0
	h.Observe(math.MaxInt64) // counts as maxValue
	h.Observe(1500 * time.Nanosecond)
	if h.Min() != 0 || h.Max() != maxValue || h.Count() != 3 {
		t.Fatalf("min %v max %v count %d", h.Min(), h.Max(), h.Count())
	}
	if q := h.Quantile(0.5); q < 1490 || q > 1510 {
		t.Fatalf("median of 0, 1.5µs, max: %v", q)
	}
	if err := h.Data().check(); err != nil {
		t.Fatal(err)
	}
}

// Observe and a name's lookup allocate nothing: they run per message.
func TestNoAllocations(t *testing.T) {
	s := NewSet()
	h := s.Histogram("rtt")
	s.Counter("msgs.sent")
	s.Gauge("devices.up")
	for name, f := range map[string]func(){
		"Observe":          func() { h.Observe(3 * time.Millisecond) },
		"Counter lookup":   func() { s.Counter("msgs.sent").Add(1) },
		"Gauge lookup":     func() { s.Gauge("devices.up").Add(1) },
		"Histogram lookup": func() { s.Histogram("rtt").Observe(time.Millisecond) },
	} {
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s: %v allocations per call", name, a)
		}
	}
}

func BenchmarkObserve(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	d := time.Duration(0)
	for b.Loop() {
		d = (d + 7919*time.Microsecond) % time.Second
		h.Observe(d)
	}
}

func BenchmarkObserveParallel(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := time.Duration(0)
		for pb.Next() {
			d = (d + 7919*time.Microsecond) % time.Second
			h.Observe(d)
		}
	})
}

func BenchmarkCounterLookup(b *testing.B) {
	s := NewSet()
	for _, n := range []string{"devices.started", "devices.connected", "devices.failed", "devices.stopped",
		"connect.attempts", "connect.failed", "msgs.sent", "msgs.recv", "bytes.sent", "bytes.recv", "errors", "reconnects"} {
		s.Counter(n)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Counter("msgs.sent").Add(1)
	}
}

func BenchmarkSummary(b *testing.B) {
	s := NewSet()
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []string{"rtt", "connect"} {
		h := s.Histogram(n)
		for range 100_000 {
			h.Observe(distributions["log-normal median 5ms"](r))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Summary()
	}
}

// A timing holds the buckets of the powers of two its durations reach,
// not the whole layout: 1 ms to 1 s is eleven groups of 1 KiB.
func TestHistogramHoldsOnlyItsRange(t *testing.T) {
	var h Histogram
	for d := time.Millisecond; d <= time.Second; d += 997 * time.Microsecond {
		h.Observe(d)
	}
	used := 0
	for i := range h.groups {
		if h.groups[i].Load() != nil {
			used++
		}
	}
	if used != 11 {
		t.Fatalf("%d groups of buckets for 1ms..1s, want 11 (2^19..2^29 ns)", used)
	}
}

// Names created from many goroutines at once each exist once, and every
// add lands in the one counter of its name.
func TestSetConcurrent(t *testing.T) {
	s := NewSet()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				name := string(rune('a' + (i+g)%20))
				s.Counter(name).Add(1)
				s.Gauge(name).Add(1)
				s.Histogram(name).Observe(time.Duration(i))
			}
		}()
	}
	wg.Wait()
	sum := s.Summary()
	if len(sum.Counters) != 20 || len(sum.Gauges) != 20 || len(sum.Timings) != 20 {
		t.Fatalf("%d counters, %d gauges, %d timings, want 20 each", len(sum.Counters), len(sum.Gauges), len(sum.Timings))
	}
	for name, n := range sum.Counters {
		if n != 800 || sum.Gauges[name] != 800 || sum.Timings[name].Count != 800 {
			t.Fatalf("%s: counter %d, gauge %v, timing %d, want 800", name, n, sum.Gauges[name], sum.Timings[name].Count)
		}
	}
}
