package metrics

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The bucket layout, the same in every process so that histograms merge by
// adding counts. Durations are whole nanoseconds. Below 2^(subBits+1) ns
// (256 ns) every value has a bucket of its own. Above, each power of two
// [2^e, 2^(e+1)) is cut into 2^subBits = 128 equal buckets, so a bucket is
// at most 1/128 of its lower bound wide; a quantile reported at the middle
// of its bucket is within 1/256 (0.4%) of the sample it stands for.
const (
	subBits    = 7
	subCount   = 1 << subBits // buckets per power of two
	linearTop  = 2 * subCount // values below this have a bucket each
	topExp     = 61           // the last power of two with buckets
	numBuckets = linearTop + (topExp-subBits)*subCount
	// Layout names the bucket layout in a summary file; a file with another
	// one cannot be merged with ours.
	Layout = "log-linear ns, 128 per power of 2"
	// maxValue is the longest duration with a bucket, about 146 years:
	// longer ones count as this, so that no bound overflows an int64.
	maxValue = 1<<(topExp+1) - 1
)

// bucketOf returns the bucket index of v ≥ 0 nanoseconds.
func bucketOf(v int64) int {
	if v < linearTop {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 1 // v in [2^e, 2^(e+1)), e ≥ subBits+1
	sub := int(v>>(e-subBits)) & (subCount - 1)
	return linearTop + (e-subBits-1)*subCount + sub
}

// bucketBounds returns the first value of bucket i and its width.
func bucketBounds(i int) (lower, width int64) {
	if i < linearTop {
		return int64(i), 1
	}
	g, sub := (i-linearTop)/subCount, (i-linearTop)%subCount
	e := g + subBits + 1
	width = int64(1) << (e - subBits)
	return int64(subCount+sub) * width, width
}

// numGroups is how many groups of subCount buckets the layout has: the
// linear part is the first two, then one per power of two.
const numGroups = numBuckets / subCount

// group is the buckets of one power of two (1 KiB).
type group [subCount]atomic.Int64

// Histogram records durations in the fixed log-linear buckets above. Safe
// for concurrent use; its zero value is empty and ready. Observe is a few
// atomic adds, with no lock and no allocation once the duration's power of
// two has been seen: each power of two's buckets are allocated on its
// first sample, so a timing whose durations span ten powers of two (1 ms
// to 1 s) holds 10 KiB of buckets, not the layout's 56 KiB.
type Histogram struct {
	count   atomic.Int64
	sum     atomic.Int64 // nanoseconds
	minPlus atomic.Int64 // min+1 ns; 0 while empty, so the zero value works
	max     atomic.Int64
	groups  [numGroups]atomic.Pointer[group]
}

// bucket returns the counter of bucket i, allocating its group the first
// time (two observers racing there keep the first group stored).
func (h *Histogram) bucket(i int) *atomic.Int64 {
	g := h.groups[i/subCount].Load()
	if g == nil {
		h.groups[i/subCount].CompareAndSwap(nil, new(group))
		g = h.groups[i/subCount].Load()
	}
	return &g[i%subCount]
}

// Observe records one duration; a negative one counts as 0.
func (h *Histogram) Observe(d time.Duration) {
	v := min(max(int64(d), 0), maxValue)
	h.bucket(bucketOf(v)).Add(1)
	h.sum.Add(v)
	for m := h.minPlus.Load(); m == 0 || v+1 < m; m = h.minPlus.Load() {
		if h.minPlus.CompareAndSwap(m, v+1) {
			break
		}
	}
	for m := h.max.Load(); v > m; m = h.max.Load() {
		if h.max.CompareAndSwap(m, v) {
			break
		}
	}
	h.count.Add(1) // last: a reader seeing count n sees n samples' buckets
}

// Count returns how many durations were observed.
func (h *Histogram) Count() int64 { return h.count.Load() }

// Max returns the longest duration observed (0 when empty).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Min returns the shortest duration observed (0 when empty).
func (h *Histogram) Min() time.Duration {
	return time.Duration(max(h.minPlus.Load()-1, 0))
}

// Quantile returns the duration below which a fraction q (0 to 1) of the
// observations fall: the middle of the bucket holding the ceil(q·n)-th
// smallest sample, kept within [Min, Max]; 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	return h.Data().Quantile(q)
}

// Data returns a snapshot of h in the summary file's form. Taken while
// others observe, it may miss samples arriving meanwhile, but its Count
// always equals the sum of its buckets.
func (h *Histogram) Data() HistogramData {
	d := HistogramData{Layout: Layout}
	for gi := range h.groups {
		g := h.groups[gi].Load()
		if g == nil {
			continue
		}
		for j := range g {
			if n := g[j].Load(); n > 0 {
				lower, _ := bucketBounds(gi*subCount + j)
				d.Buckets = append(d.Buckets, [2]int64{lower, n})
				d.Count += n
			}
		}
	}
	if d.Count == 0 {
		return d
	}
	d.Sum = time.Duration(h.sum.Load())
	d.Min, d.Max = h.Min(), h.Max()
	// A sample counted in a bucket may not have reached min and max yet:
	// keep them within the buckets' range.
	first := d.Buckets[0][0]
	last := d.Buckets[len(d.Buckets)-1][0]
	if d.Min < time.Duration(first) || d.Min >= time.Duration(first+widthOf(first)) {
		d.Min = time.Duration(first)
	}
	if d.Max < time.Duration(last) || d.Max >= time.Duration(last+widthOf(last)) {
		d.Max = time.Duration(last + widthOf(last) - 1)
	}
	return d
}

// widthOf returns the width of the bucket that starts at lower.
func widthOf(lower int64) int64 {
	_, w := bucketBounds(bucketOf(lower))
	return w
}

// HistogramData is a histogram in a summary file: the non-empty buckets as
// [first nanosecond, count] pairs in increasing order, and the exact count,
// sum, min and max. Two of them with the same Layout merge exactly.
type HistogramData struct {
	Layout  string
	Count   int64
	Sum     time.Duration // nanoseconds, like Min and Max
	Min     time.Duration
	Max     time.Duration
	Buckets [][2]int64
}

// Quantile is Histogram.Quantile on the snapshot.
func (d HistogramData) Quantile(q float64) time.Duration {
	if d.Count == 0 {
		return 0
	}
	switch {
	case q <= 0 || math.IsNaN(q):
		return d.Min
	case q >= 1:
		return d.Max
	}
	rank := int64(math.Ceil(q * float64(d.Count)))
	rank = min(max(rank, 1), d.Count)
	var seen int64
	for _, b := range d.Buckets {
		seen += b[1]
		if seen >= rank {
			w := widthOf(b[0])
			v := time.Duration(b[0] + w/2)
			return min(max(v, d.Min), d.Max)
		}
	}
	return d.Max
}

// Mean returns the average duration (0 when empty).
func (d HistogramData) Mean() time.Duration {
	if d.Count == 0 {
		return 0
	}
	return time.Duration(float64(d.Sum) / float64(d.Count))
}

// merge adds o's samples to d.
func (d HistogramData) merge(o HistogramData) HistogramData {
	if o.Count == 0 {
		return d
	}
	if d.Count == 0 {
		o.Buckets = append([][2]int64(nil), o.Buckets...)
		return o
	}
	out := HistogramData{Layout: Layout, Count: d.Count + o.Count, Sum: addSat(d.Sum, o.Sum),
		Min: min(d.Min, o.Min), Max: max(d.Max, o.Max)}
	a, b := d.Buckets, o.Buckets
	out.Buckets = make([][2]int64, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || len(a) > 0 && a[0][0] < b[0][0]:
			out.Buckets, a = append(out.Buckets, a[0]), a[1:]
		case len(a) == 0 || b[0][0] < a[0][0]:
			out.Buckets, b = append(out.Buckets, b[0]), b[1:]
		default:
			out.Buckets = append(out.Buckets, [2]int64{a[0][0], a[0][1] + b[0][1]})
			a, b = a[1:], b[1:]
		}
	}
	return out
}

// addSat adds two non-negative durations, stopping at the largest.
func addSat(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
