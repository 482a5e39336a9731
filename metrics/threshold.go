package metrics

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Threshold is one `METRIC OP VALUE` check of a summary, such as
// `rtt.p99 < 50ms`, `errors == 0` or `connect.failed < 1%`.
type Threshold struct {
	Expr   string // as written
	Metric string
	Op     string // < <= > >= == !=
	Value  float64
	Kind   ValueKind
}

// ValueKind is what a threshold's VALUE is.
type ValueKind int

const (
	Number   ValueKind = iota // 0, 12.5, 1e3
	Duration                  // 50ms, 1.5s: Value in nanoseconds
	Percent                   // 1%: Value in percent
)

// timingStats are the suffixes that read a timing: rtt.p99.
var timingStats = map[string]bool{
	"p50": true, "p90": true, "p95": true, "p99": true, "p999": true,
	"max": true, "min": true, "mean": true, "count": true,
}

// statQuantiles are the percentile suffixes and their fractions.
var statQuantiles = map[string]float64{
	"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "p999": 0.999,
}

// builtinBases are the counters a percentage of a built-in counter is
// taken of: `connect.failed < 1%` is failed connects per 100 attempts.
// Other counters A.B use A.attempts, else A.total (see Base).
var builtinBases = map[string]string{
	"connect.failed": "connect.attempts",
	"devices.failed": "devices.started",
	"errors":         "msgs.sent",
	"msgs.recv":      "msgs.sent",
	"reconnects":     "devices.started",
}

var ops = []string{"<=", ">=", "==", "!=", "<", ">"} // longest first

// ParseThreshold reads `METRIC OP VALUE`. A syntax error names the column
// and what was expected there.
func ParseThreshold(expr string) (Threshold, error) {
	t := Threshold{Expr: expr}
	fail := func(at int, format string, args ...any) (Threshold, error) {
		return Threshold{}, fmt.Errorf("threshold %q: column %d: %s", expr, at+1, fmt.Sprintf(format, args...))
	}
	i := skipSpace(expr, 0)
	start := i
	for i < len(expr) && isNameByte(expr[i]) {
		i++
	}
	t.Metric = expr[start:i]
	if t.Metric == "" {
		if i >= len(expr) {
			return fail(i, "empty: want METRIC OP VALUE, e.g. 'rtt.p99 < 50ms'")
		}
		return fail(i, "%q cannot start a metric name (letters, digits, . _ - : /)", expr[i])
	}
	if strings.HasPrefix(t.Metric, ".") || strings.HasSuffix(t.Metric, ".") || strings.Contains(t.Metric, "..") {
		return fail(start, "metric %q has an empty part between dots", t.Metric)
	}
	i = skipSpace(expr, i)
	for _, op := range ops {
		if strings.HasPrefix(expr[i:], op) {
			t.Op = op
			break
		}
	}
	if t.Op == "" {
		switch rest := expr[i:]; {
		case rest == "":
			return fail(i, "missing operator after %q: one of < <= > >= == !=", t.Metric)
		case strings.HasPrefix(rest, "="):
			return fail(i, "'=' is not an operator: write == to compare")
		default:
			return fail(i, "want an operator (< <= > >= == !=), not %q", firstWord(rest))
		}
	}
	i = skipSpace(expr, i+len(t.Op))
	if strings.ContainsAny(expr[i:i+min(1, len(expr)-i)], "<>=!") {
		return fail(i, "one operator only: %q then %q", t.Op, expr[i:i+1])
	}
	vs := strings.TrimRightFunc(expr[i:], isSpace)
	if vs == "" {
		return fail(i, "missing value after %q", t.Op)
	}
	if j := strings.IndexFunc(vs, isSpace); j >= 0 {
		return fail(i+j, "unexpected %q after the value %q", strings.TrimLeftFunc(vs[j:], isSpace), vs[:j])
	}
	stat := t.Metric[strings.LastIndexByte(t.Metric, '.')+1:]
	isTime := timingStats[stat] && stat != "count" && strings.Contains(t.Metric, ".")
	switch {
	case strings.HasSuffix(vs, "%"):
		v, err := strconv.ParseFloat(vs[:len(vs)-1], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return fail(i, "%q is not a percentage", vs)
		}
		if isTime {
			return fail(i, "%s is a timing: compare it with a duration such as 50ms, not a percentage", t.Metric)
		}
		if strings.HasSuffix(t.Metric, ".rate") || (builtinBases[t.Metric] == "" && !strings.Contains(t.Metric, ".")) {
			return fail(start, "%s has no base to take a percentage of (see docs/fleet.md, Thresholds)", t.Metric)
		}
		t.Value, t.Kind = v, Percent
	case isNumberStart(vs) && strings.IndexFunc(vs, isUnitLetter) < 0:
		v, err := strconv.ParseFloat(vs, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return fail(i, "%q is not a number", vs)
		}
		if isTime && v != 0 {
			return fail(i, "%s is a timing: give the value a unit, e.g. %sms", t.Metric, vs)
		}
		t.Value, t.Kind = v, Number
	default:
		d, err := time.ParseDuration(vs)
		if err != nil {
			return fail(i, "%q is not a number, a duration (50ms, 1.5s) or a percentage (1%%)", vs)
		}
		if !isTime {
			return fail(i, "a duration compares with a timing statistic (%s.p99, .max, ...), and %s is not one", t.Metric, t.Metric)
		}
		t.Value, t.Kind = float64(d), Duration
	}
	return t, nil
}

// ParseThresholds parses each expression; the first error stops.
func ParseThresholds(exprs []string) ([]Threshold, error) {
	out := make([]Threshold, 0, len(exprs))
	for _, e := range exprs {
		t, err := ParseThreshold(e)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == ':' || c == '/'
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' }

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func firstWord(s string) string {
	if j := strings.IndexFunc(s, isSpace); j >= 0 {
		return s[:j]
	}
	return s
}

func isNumberStart(s string) bool {
	return s[0] == '-' || s[0] == '+' || s[0] == '.' || s[0] >= '0' && s[0] <= '9'
}

// isUnitLetter spots a duration's unit; e and E belong to numbers (1e3).
func isUnitLetter(r rune) bool {
	return r != 'e' && r != 'E' && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == 'µ' || r == 'μ')
}

// Base returns the counter a percentage of counter name is taken of in s:
// the built-in pairs (docs/fleet.md), else A.attempts or A.total for a
// counter A.B. ok is false when s has none.
func Base(s Summary, name string) (base string, ok bool) {
	if b, found := builtinBases[name]; found {
		_, ok = s.Counters[b]
		return b, ok
	}
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return "", false
	}
	for _, last := range []string{"attempts", "total"} {
		b := name[:dot+1] + last
		if _, found := s.Counters[b]; found && b != name {
			return b, true
		}
	}
	return "", false
}

// Check evaluates t on s: whether it holds, and the figure it compared
// ("41.2ms", "0", "0.52% (104 of 20000 connect.attempts)"). A metric that
// s does not hold is unmet, with actual "absent", so that a typo cannot
// pass.
func (t Threshold) Check(s Summary) (met bool, actual string) {
	v, actual, ok := t.actual(s)
	if !ok {
		return false, actual
	}
	return compare(v, t.Op, t.Value), actual
}

// actual finds the figure t compares; ok is false when there is none, and
// actual then says why.
func (t Threshold) actual(s Summary) (v float64, actual string, ok bool) {
	if c, found := s.Counters[t.Metric]; found {
		switch t.Kind {
		case Percent:
			base, ok := Base(s, t.Metric)
			if !ok {
				if base == "" {
					return 0, "no base: neither " + baseCandidates(t.Metric) + " in the summary", false
				}
				return 0, "no base: " + base + " absent", false
			}
			n := s.Counters[base]
			if n == 0 {
				return 0, fmt.Sprintf("%d of 0 %s", c, base), false
			}
			p := 100 * float64(c) / float64(n)
			return p, fmt.Sprintf("%s%% (%d of %d %s)", fmtPercent(p), c, n, base), true
		case Duration:
			return 0, t.Metric + " is a counter, not a timing", false
		}
		return float64(c), strconv.FormatInt(c, 10), true
	}
	if g, found := s.Gauges[t.Metric]; found {
		if t.Kind != Number {
			return 0, t.Metric + " is a gauge: compare it with a number", false
		}
		return g, strconv.FormatFloat(g, 'g', -1, 64), true
	}
	dot := strings.LastIndexByte(t.Metric, '.')
	if dot < 0 {
		return 0, "absent", false
	}
	name, stat := t.Metric[:dot], t.Metric[dot+1:]
	if c, found := s.Counters[name]; found && stat == "rate" {
		if s.Elapsed <= 0 {
			return 0, "no rate: the summary covers no time", false
		}
		r := float64(c) / s.Elapsed
		return r, fmtRate(c, s.Elapsed), true
	}
	d, found := s.Timings[name]
	if !found || !timingStats[stat] {
		return 0, "absent", false
	}
	if t.Kind == Percent {
		return 0, t.Metric + " is a timing's figure: percentages are of counters", false
	}
	if stat == "count" {
		return float64(d.Count), strconv.FormatInt(d.Count, 10), true
	}
	if d.Count == 0 {
		return 0, "no samples", false
	}
	var x time.Duration
	switch stat {
	case "max":
		x = d.Max
	case "min":
		x = d.Min
	case "mean":
		x = d.Mean()
	default:
		x = d.Quantile(statQuantiles[stat])
	}
	return float64(x), FormatDuration(x), true
}

// baseCandidates names the counters a percentage of name could be taken of.
func baseCandidates(name string) string {
	a := name[:strings.LastIndexByte(name, '.')+1]
	return a + "attempts nor " + a + "total"
}

func compare(a float64, op string, b float64) bool {
	switch op {
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	case ">=":
		return a >= b
	case "==":
		return a == b
	case "!=":
		return a != b
	}
	return false
}

// UnmetError says how many thresholds a run missed (wirecat exits 3, as
// for send's unexpected reply).
type UnmetError struct{ Unmet, Of int }

func (e *UnmetError) Error() string {
	if e.Of == 1 {
		return "the threshold was not met"
	}
	return fmt.Sprintf("%d of %d thresholds not met", e.Unmet, e.Of)
}

// CheckAll checks every threshold against s and prints one line each on w:
// "threshold EXPR: met (ACTUAL)" or "threshold EXPR: NOT met (ACTUAL)". It
// returns an *UnmetError when any is unmet, nil otherwise.
func CheckAll(w io.Writer, s Summary, ts []Threshold) error {
	unmet := 0
	for _, t := range ts {
		met, actual := t.Check(s)
		verdict := "met"
		if !met {
			verdict = "NOT met"
			unmet++
		}
		fmt.Fprintf(w, "threshold %s: %s (%s)\n", t.Expr, verdict, actual)
	}
	if unmet > 0 {
		return &UnmetError{Unmet: unmet, Of: len(ts)}
	}
	return nil
}

// fmtPercent prints p with three significant digits, more when those
// would round it to 0 or 100 (99.984 is not 100%).
func fmtPercent(p float64) string {
	for digits := 3; ; digits++ {
		out := strconv.FormatFloat(p, 'g', digits, 64)
		v, _ := strconv.ParseFloat(out, 64)
		if digits >= 8 || (v != 0 || p == 0) && (v != 100 || p == 100) {
			return out
		}
	}
}
