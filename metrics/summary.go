package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Version is the summary file format this package writes and reads.
const Version = 1

// maxSummaryBytes bounds what ReadSummary reads: a summary of a few hundred
// metrics is tens of kilobytes (a busy timing has at most a few hundred
// non-empty buckets), so 64 MiB is a file that is not a summary.
const maxSummaryBytes = 64 << 20

// Summary is the end of a run in figures: the --summary JSON file, and
// what `wirecat summary` reads and merges.
type Summary struct {
	Version int
	// Shard is "K/N" for one shard's file; Shards lists the shards a
	// merged summary holds.
	Shard    string   `json:",omitempty"`
	Shards   []string `json:",omitempty"`
	Started  time.Time
	Elapsed  float64 // seconds
	Counters map[string]int64
	Gauges   map[string]float64
	Timings  map[string]HistogramData
}

// ShardError is a shard Merge refuses: one given twice (Earlier ==
// Shard), or one of another fleet size than an earlier one. Part and
// EarlierPart index the summaries that hold them, so a caller can name
// its files.
type ShardError struct {
	Shard, Earlier    string
	Part, EarlierPart int
}

func (e *ShardError) Error() string {
	if e.Shard == e.Earlier {
		return fmt.Sprintf("shard %s appears twice", e.Shard)
	}
	_, n, _ := ParseShard(e.Shard)
	_, of, _ := ParseShard(e.Earlier)
	return fmt.Sprintf("shard %s is one of %d, an earlier one of %d: not the same fleet", e.Shard, n, of)
}

// Merge adds summaries together: counters and histograms add (exactly),
// gauges add too (a gauge is a level of one process, such as devices up,
// so the fleet's is the sum of its shards'), Started is the earliest and
// Elapsed runs to the latest end. Shards of different N, or the same
// shard twice, are an error.
func Merge(ss ...Summary) (Summary, error) {
	if len(ss) == 0 {
		return Summary{}, errors.New("no summary to merge")
	}
	out := Summary{Version: Version, Counters: map[string]int64{},
		Gauges: map[string]float64{}, Timings: map[string]HistogramData{}}
	var end time.Time
	seen := map[string]int{} // shard → the summary holding it
	first, firstAt := "", 0  // the first shard: the others are of its fleet
	for i, s := range ss {
		if s.Version != Version {
			return Summary{}, fmt.Errorf("summary %d is version %d; this wirecat merges version %d", i+1, s.Version, Version)
		}
		parts := s.Shards
		if s.Shard != "" {
			parts = append(parts[:len(parts):len(parts)], s.Shard)
		}
		for _, p := range parts {
			_, n, err := ParseShard(p)
			if err != nil {
				return Summary{}, err
			}
			if first == "" {
				first, firstAt = p, i
			}
			if _, of, _ := ParseShard(first); n != of {
				return Summary{}, &ShardError{Shard: p, Part: i, Earlier: first, EarlierPart: firstAt}
			}
			if at, dup := seen[p]; dup {
				return Summary{}, &ShardError{Shard: p, Part: i, Earlier: p, EarlierPart: at}
			}
			seen[p] = i
			out.Shards = append(out.Shards, p)
		}
		if i == 0 || s.Started.Before(out.Started) {
			out.Started = s.Started
		}
		if e := s.end(); i == 0 || e.After(end) {
			end = e
		}
		for k, v := range s.Counters {
			out.Counters[k] += v
		}
		for k, v := range s.Gauges {
			out.Gauges[k] += v
		}
		for k, v := range s.Timings {
			if v.Layout != Layout {
				return Summary{}, fmt.Errorf("timing %s: bucket layout %q, not %q", k, v.Layout, Layout)
			}
			cur, ok := out.Timings[k]
			if !ok {
				cur = HistogramData{Layout: Layout}
			}
			out.Timings[k] = cur.merge(v)
		}
	}
	if len(ss) == 1 {
		out.Shard, out.Shards = ss[0].Shard, ss[0].Shards
	}
	slices.SortFunc(out.Shards, func(a, b string) int {
		ka, _, _ := ParseShard(a)
		kb, _, _ := ParseShard(b)
		return ka - kb
	})
	out.Elapsed = end.Sub(out.Started).Seconds()
	return out, nil
}

// end is when the run ended.
func (s Summary) end() time.Time {
	return s.Started.Add(time.Duration(s.Elapsed * float64(time.Second)))
}

// MaxShards bounds N in K/N: a shard is a process of up to ~20,000
// devices, so 10,000 shards are 200 million devices, more than any
// backend under test needs; a larger N is a typo.
const MaxShards = 10000

// ParseShard reads "K/N" (0 ≤ K < N ≤ MaxShards).
func ParseShard(s string) (k, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	k, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || k < 0 || k >= n {
		return 0, 0, fmt.Errorf("shard %q: want K/N with 0 ≤ K < N", s)
	}
	if n > MaxShards {
		return 0, 0, fmt.Errorf("shard %q: more than %d shards", s, MaxShards)
	}
	return k, n, nil
}

// WriteJSON writes s as the summary file: indented JSON, names sorted.
func (s Summary) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	// A bucket on one line, not three: [999424, 17].
	b = pairLines.ReplaceAll(b, []byte("[$1, $2]"))
	_, err = w.Write(append(b, '\n'))
	return err
}

var pairLines = regexp.MustCompile(`\[\s+(\d+),\s+(\d+)\s+\]`)

// ReadSummary reads a summary file. A damaged file is an error naming its
// line; a JSON file that is not a summary, or one whose figures do not add
// up, is an error naming what is wrong.
func ReadSummary(r io.Reader) (Summary, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSummaryBytes+1))
	if err != nil {
		return Summary{}, err
	}
	if len(b) > maxSummaryBytes {
		return Summary{}, fmt.Errorf("larger than %d MiB: not a summary file", maxSummaryBytes>>20)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return Summary{}, errors.New("empty: not a summary file")
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			if strings.Contains(syn.Error(), "unexpected end") {
				return Summary{}, fmt.Errorf("line %d: the file ends early", lineAt(b, syn.Offset))
			}
			return Summary{}, fmt.Errorf("line %d: %v", lineAt(b, syn.Offset), syn)
		case errors.As(err, &typ):
			return Summary{}, fmt.Errorf("line %d: %s holds a %s, want %s", lineAt(b, typ.Offset), typ.Field, typ.Value, typ.Type)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Summary{}, fmt.Errorf("line %d: the file ends early", lineAt(b, int64(len(b))))
		}
		return Summary{}, err
	}
	if err := s.check(); err != nil {
		return Summary{}, err
	}
	return s, nil
}

// lineAt returns the line of byte offset off (1 first).
func lineAt(b []byte, off int64) int {
	off = min(max(off, 0), int64(len(b)))
	return 1 + bytes.Count(b[:off], []byte{'\n'})
}

// check says what makes a decoded file no summary, or a damaged one.
func (s Summary) check() error {
	switch {
	case s.Version == 0:
		return errors.New("no Version: not a wirecat summary file")
	case s.Version != Version:
		return fmt.Errorf("summary version %d; this wirecat reads version %d", s.Version, Version)
	case math.IsNaN(s.Elapsed) || math.IsInf(s.Elapsed, 0) || s.Elapsed < 0:
		return fmt.Errorf("Elapsed %v is not a duration in seconds", s.Elapsed)
	}
	for _, p := range append(slices.Clip(s.Shards), s.Shard) {
		if p == "" {
			continue
		}
		if _, _, err := ParseShard(p); err != nil {
			return err
		}
	}
	for k, d := range s.Timings {
		if err := d.check(); err != nil {
			return fmt.Errorf("timing %s: %w", k, err)
		}
	}
	return nil
}

// check verifies a histogram's figures agree with its buckets.
func (d HistogramData) check() error {
	if d.Layout != Layout {
		return fmt.Errorf("bucket layout %q, not %q", d.Layout, Layout)
	}
	var n int64
	for i, b := range d.Buckets {
		if b[0] < 0 || bucketOf(b[0]) >= numBuckets {
			return fmt.Errorf("bucket %d starts at %d ns: out of range", i+1, b[0])
		}
		if lower, _ := bucketBounds(bucketOf(b[0])); lower != b[0] {
			return fmt.Errorf("bucket %d starts at %d ns, not a bucket boundary", i+1, b[0])
		}
		if i > 0 && b[0] <= d.Buckets[i-1][0] {
			return fmt.Errorf("bucket %d is out of order", i+1)
		}
		if b[1] <= 0 || n+b[1] < n {
			return fmt.Errorf("bucket %d holds %d samples", i+1, b[1])
		}
		n += b[1]
	}
	if n != d.Count {
		return fmt.Errorf("buckets hold %d samples, Count says %d", n, d.Count)
	}
	if n == 0 {
		if d.Sum != 0 || d.Min != 0 || d.Max != 0 {
			return errors.New("no samples but a sum, min or max")
		}
		return nil
	}
	first, last := d.Buckets[0][0], d.Buckets[len(d.Buckets)-1][0]
	if int64(d.Min) < first || int64(d.Min) >= first+widthOf(first) {
		return fmt.Errorf("Min %d ns is not in the first bucket", d.Min)
	}
	if int64(d.Max) < last || int64(d.Max) >= last+widthOf(last) {
		return fmt.Errorf("Max %d ns is not in the last bucket", d.Max)
	}
	if d.Sum < d.Min || d.Sum < d.Max {
		return fmt.Errorf("Sum %d ns is less than Min or Max", d.Sum)
	}
	return nil
}

// Text is the human summary: each counter's total and rate per second over
// Elapsed, each gauge's level, and each timing's count, p50, p90, p99 and
// max.
func (s Summary) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "summary: %s", fmtSeconds(s.Elapsed))
	if !s.Started.IsZero() {
		fmt.Fprintf(&b, " from %s", s.Started.UTC().Format("2006-01-02 15:04:05Z"))
	}
	switch {
	case s.Shard != "":
		fmt.Fprintf(&b, ", shard %s", s.Shard)
	case len(s.Shards) > 0:
		_, n, _ := ParseShard(s.Shards[0])
		fmt.Fprintf(&b, ", %d of %d shards", len(s.Shards), n)
		switch missing := n - len(s.Shards); {
		case missing > 0 && missing <= 8:
			fmt.Fprintf(&b, " (missing %s)", strings.Join(missingShards(s.Shards, n), " "))
		case missing > 8:
			fmt.Fprintf(&b, " (%d missing)", missing)
		}
	}
	b.WriteString("\n")
	width := 8
	for _, m := range []map[string]bool{keys(s.Counters), keys(s.Gauges), keys(s.Timings)} {
		for k := range m {
			width = max(width, len(k))
		}
	}
	if len(s.Counters) > 0 {
		fmt.Fprintf(&b, "  %-*s %12s %12s\n", width, "counter", "total", "rate")
		for _, k := range sortedKeys(s.Counters) {
			fmt.Fprintf(&b, "  %-*s %12d %12s\n", width, k, s.Counters[k], fmtRate(s.Counters[k], s.Elapsed))
		}
	}
	if len(s.Gauges) > 0 {
		fmt.Fprintf(&b, "  %-*s %12s\n", width, "gauge", "level")
		for _, k := range sortedKeys(s.Gauges) {
			fmt.Fprintf(&b, "  %-*s %12s\n", width, k, strconv.FormatFloat(s.Gauges[k], 'g', 6, 64))
		}
	}
	if len(s.Timings) > 0 {
		fmt.Fprintf(&b, "  %-*s %12s %8s %8s %8s %8s\n", width, "timing", "count", "p50", "p90", "p99", "max")
		for _, k := range sortedKeys(s.Timings) {
			d := s.Timings[k]
			fmt.Fprintf(&b, "  %-*s %12d %8s %8s %8s %8s\n", width, k, d.Count,
				FormatDuration(d.Quantile(0.5)), FormatDuration(d.Quantile(0.9)),
				FormatDuration(d.Quantile(0.99)), FormatDuration(d.Max))
		}
	}
	if len(s.Counters)+len(s.Gauges)+len(s.Timings) == 0 {
		b.WriteString("  no metrics\n")
	}
	return b.String()
}

// missingShards lists the K/N not in have.
func missingShards(have []string, n int) []string {
	var out []string
	got := make(map[string]bool, len(have))
	for _, p := range have {
		got[p] = true
	}
	for k := range n {
		if p := fmt.Sprintf("%d/%d", k, n); !got[p] {
			out = append(out, p)
		}
	}
	return out
}

func keys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// fmtRate is n per second over elapsed seconds, three significant digits.
func fmtRate(n int64, elapsed float64) string {
	if elapsed <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(n)/elapsed, 'f', rateDigits(float64(n)/elapsed), 64) + "/s"
}

// rateDigits is how many decimals give a rate three significant digits.
func rateDigits(r float64) int {
	switch r = math.Abs(r); {
	case r >= 100 || r == 0:
		return 0
	case r >= 10:
		return 1
	case r >= 1:
		return 2
	}
	return 3
}

func fmtSeconds(s float64) string {
	return FormatDuration(time.Duration(s * float64(time.Second)))
}

// FormatDuration prints d with three significant digits in the unit that
// suits it: 812µs, 1.23ms, 41.2ms, 2.50s, 3m20s.
func FormatDuration(d time.Duration) string {
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	units := []struct {
		size time.Duration
		name string
	}{{time.Second, "s"}, {time.Millisecond, "ms"}, {time.Microsecond, "µs"}}
	for _, u := range units {
		if d >= u.size {
			v := float64(d) / float64(u.size)
			return strconv.FormatFloat(v, 'f', rateDigits(v), 64) + u.name
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}
