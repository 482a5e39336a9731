package relay

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/wirecat-dev/wirecat/units"
)

// ErrBadFault is matched (errors.Is) by every error ParseFaults returns; the
// CLI turns it into a usage error.
var ErrBadFault = errors.New("bad fault")

// Faults are the network faults a relay applies to every pair.
type Faults struct {
	Up   DirFaults // client → server
	Down DirFaults // server → client
	// CutTime closes a pair this long after it opened (0: never).
	CutTime time.Duration
	// CutBytes closes a pair once this many bytes went through it, both
	// directions counted together (0: never).
	CutBytes int64
	// ResetTime resets a pair (TCP RST on both sides) this long after it
	// opened (0: never).
	ResetTime time.Duration
}

// DirFaults are the faults of one direction.
type DirFaults struct {
	Delay  time.Duration // each message waits this long
	Jitter time.Duration // ± this much, uniformly; never more than Delay
	Drop   float64       // probability that a message is dropped, 0..1
	Rate   float64       // bytes per second, 0: unlimited
	// CutBytes closes the pair once this direction carried this many bytes.
	CutBytes int64
	// ResetBytes resets the pair (RST) once this direction carried this
	// many bytes; Reset resets it on a message with this probability.
	ResetBytes int64
	Reset      float64
	// Blackhole swallows the direction: its bytes are read and never
	// written, nor its end passed on.
	Blackhole bool
	// SliceMin..SliceMax cut each write to a stream into pieces of a random
	// size in this range, SlicePause apart (SliceMax 0: whole writes).
	SliceMin, SliceMax int
	SlicePause         time.Duration
	// Corrupt flips one random bit in a message with this probability.
	Corrupt float64
}

func (d DirFaults) active() bool {
	return d.Delay > 0 || d.Jitter > 0 || d.Drop > 0 || d.Rate > 0 || d.CutBytes > 0 ||
		d.ResetBytes > 0 || d.Reset > 0 || d.Blackhole || d.SliceMax > 0 || d.Corrupt > 0
}

// queued reports whether messages must wait in a queue rather than be
// written as they come.
func (d DirFaults) queued() bool { return d.Delay > 0 || d.Rate > 0 }

// Active reports whether any fault is set.
func (f Faults) Active() bool {
	return f.Up.active() || f.Down.active() || f.CutTime > 0 || f.CutBytes > 0 || f.ResetTime > 0
}

// FaultSpecs are the fault flags as typed. Every value reads
// `[up:|down:]VALUE`: `up:` is client → server, `down:` server → client,
// no prefix both directions.
type FaultSpecs struct {
	Delay    []string `json:"delay,omitempty"`
	Jitter   []string `json:"jitter,omitempty"`
	Drop     []string `json:"drop,omitempty"`
	Rate     []string `json:"rate,omitempty"`
	CutAfter []string `json:"cut-after,omitempty"`
	Reset    []string `json:"reset,omitempty"`
	Slice    []string `json:"slice,omitempty"`
	Corrupt  []string `json:"corrupt,omitempty"`
	// Blackhole values are up, down, both or off.
	Blackhole []string `json:"blackhole,omitempty"`
}

// faultFlag is one fault flag and the list of values typed for it.
type faultFlag struct {
	name string
	vals *[]string
}

// flags lists the fault flags in command-line order, each with its values;
// Args, set and checkDirs all walk this one table.
func (s *FaultSpecs) flags() []faultFlag {
	return []faultFlag{{"--delay", &s.Delay}, {"--jitter", &s.Jitter}, {"--drop", &s.Drop}, {"--rate", &s.Rate},
		{"--cut-after", &s.CutAfter}, {"--reset", &s.Reset}, {"--slice", &s.Slice}, {"--corrupt", &s.Corrupt},
		{"--blackhole", &s.Blackhole}}
}

// Args writes the specs as command-line flags: --delay up:200ms --drop 0.1.
func (s FaultSpecs) Args() []string {
	var out []string
	for _, f := range s.flags() {
		for _, v := range *f.vals {
			out = append(out, f.name, v)
		}
	}
	return out
}

// set adds a value to the spec of flag name (--delay...); false for a flag
// that is not a fault.
func (s *FaultSpecs) set(name, v string) bool {
	for _, f := range s.flags() {
		if f.name == name {
			*f.vals = append(*f.vals, v)
			return true
		}
	}
	return false
}

// ParseFaults reads the fault flags; an out-of-range value is an error
// naming the flag and the value.
func ParseFaults(s FaultSpecs) (Faults, error) {
	var f Faults
	if err := checkDirs(s); err != nil {
		return f, err
	}
	dirs := func(dir string) []*DirFaults {
		switch dir {
		case "up":
			return []*DirFaults{&f.Up}
		case "down":
			return []*DirFaults{&f.Down}
		}
		return []*DirFaults{&f.Up, &f.Down}
	}
	for _, v := range s.Delay {
		dir, val := splitDir(v)
		d, err := units.ParseDuration(val)
		if err != nil {
			return f, faultErr("--delay", v, err.Error())
		}
		for _, x := range dirs(dir) {
			x.Delay = d
		}
	}
	for _, v := range s.Jitter {
		dir, val := splitDir(v)
		d, err := units.ParseDuration(val)
		if err != nil {
			return f, faultErr("--jitter", v, err.Error())
		}
		for _, x := range dirs(dir) {
			x.Jitter = d
		}
	}
	for _, v := range s.Drop {
		dir, val := splitDir(v)
		p, err := parseProbability(val)
		if err != nil {
			return f, faultErr("--drop", v, err.Error())
		}
		for _, x := range dirs(dir) {
			x.Drop = p
		}
	}
	for _, v := range s.Rate {
		dir, val := splitDir(v)
		r, err := units.ParseRate(val)
		if err != nil {
			return f, faultErr("--rate", v, err.Error())
		}
		if r < 1 {
			return f, faultErr("--rate", v, "a rate must be at least 1 byte per second")
		}
		for _, x := range dirs(dir) {
			x.Rate = float64(r)
		}
	}
	for _, v := range s.CutAfter {
		dir, val := splitDir(v)
		if d, err := time.ParseDuration(strings.TrimSpace(val)); err == nil {
			switch {
			case d <= 0:
				return f, faultErr("--cut-after", v, "a time must be more than 0")
			case dir != "":
				return f, faultErr("--cut-after", v, "a time cut closes the whole connection: give it without up: or down:")
			}
			f.CutTime = d
			continue
		}
		n, err := units.ParseSize(val)
		if err != nil {
			return f, faultErr("--cut-after", v, "want a duration with its unit (500ms, 10s) or a byte count (512, 64KiB)")
		}
		if n <= 0 {
			return f, faultErr("--cut-after", v, "a byte count must be more than 0")
		}
		switch dir {
		case "":
			f.CutBytes = int64(n)
		default:
			for _, x := range dirs(dir) {
				x.CutBytes = int64(n)
			}
		}
	}
	if err := parseNewFaults(s, &f, dirs); err != nil {
		return f, err
	}
	for _, d := range []struct {
		name string
		x    DirFaults
	}{{"up", f.Up}, {"down", f.Down}} {
		if d.x.Jitter > d.x.Delay {
			return f, fmt.Errorf("%w: --jitter %v is more than --delay %v (%s): a message cannot leave before it arrived", ErrBadFault, d.x.Jitter, d.x.Delay, d.name)
		}
	}
	return f, nil
}

// checkDirs refuses a direction other than up: and down: (sideways:10ms is
// an unknown direction, not a bad duration). --blackhole takes up, down,
// both or off, no prefix.
func checkDirs(s FaultSpecs) error {
	for _, fl := range s.flags() {
		if fl.name == "--blackhole" {
			continue
		}
		for _, v := range *fl.vals {
			dir, _, ok := strings.Cut(v, ":")
			if ok && dir != "up" && dir != "down" {
				return faultErr(fl.name, v, fmt.Sprintf("unknown direction %q (want up:, down:, or no prefix for both)", dir))
			}
		}
	}
	return nil
}

// splitDir cuts an `up:` or `down:` prefix off a fault value.
func splitDir(v string) (dir, val string) {
	for _, d := range []string{"up", "down"} {
		if rest, ok := strings.CutPrefix(v, d+":"); ok {
			return d, rest
		}
	}
	return "", v
}

// parseProbability reads 0.25 or 25%.
func parseProbability(s string) (float64, error) {
	t := strings.TrimSpace(s)
	scale := 1.0
	if rest, ok := strings.CutSuffix(t, "%"); ok {
		t, scale = rest, 100
	}
	p, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(p) {
		return 0, fmt.Errorf("bad probability %q (want a number from 0 to 1, or a percentage like 25%%)", s)
	}
	p /= scale
	if p < 0 || p > 1 {
		return 0, fmt.Errorf("probability %q is out of range (want 0 to 1, or 0%% to 100%%)", s)
	}
	return p, nil
}

func faultErr(flag, v, why string) error {
	return fmt.Errorf("%w: %s %q: %s", ErrBadFault, flag, v, why)
}

// maxSlice is the largest --slice piece.
const maxSlice = 64 << 10

// parseNewFaults reads --reset, --slice, --corrupt and --blackhole.
func parseNewFaults(s FaultSpecs, f *Faults, dirs func(string) []*DirFaults) error {
	for _, v := range s.Reset {
		dir, val := splitDir(v)
		t := strings.TrimSpace(val)
		if d, err := time.ParseDuration(t); err == nil {
			switch {
			case d <= 0:
				return faultErr("--reset", v, "a time must be more than 0")
			case dir != "":
				return faultErr("--reset", v, "a time reset ends the whole connection: give it without up: or down:")
			}
			f.ResetTime = d
			continue
		}
		if strings.HasSuffix(t, "%") || strings.HasPrefix(t, "0.") || strings.HasPrefix(t, ".") {
			p, err := parseProbability(t)
			if err != nil {
				return faultErr("--reset", v, err.Error())
			}
			for _, x := range dirs(dir) {
				x.Reset = p
			}
			continue
		}
		n, err := units.ParseSize(t)
		if err != nil || n <= 0 {
			return faultErr("--reset", v, "want a duration (1s), a byte count (64KiB) or a probability per message (0.05 or 5%)")
		}
		for _, x := range dirs(dir) {
			x.ResetBytes = int64(n)
		}
	}
	for _, v := range s.Slice {
		dir, val := splitDir(v)
		lo, hi, pause, err := parseSlice(val)
		if err != nil {
			return faultErr("--slice", v, err.Error())
		}
		for _, x := range dirs(dir) {
			x.SliceMin, x.SliceMax, x.SlicePause = lo, hi, pause
		}
	}
	for _, v := range s.Corrupt {
		dir, val := splitDir(v)
		p, err := parseProbability(val)
		if err != nil {
			return faultErr("--corrupt", v, err.Error())
		}
		for _, x := range dirs(dir) {
			x.Corrupt = p
		}
	}
	for _, v := range s.Blackhole {
		switch strings.TrimSpace(v) {
		case "up":
			f.Up.Blackhole = true
		case "down":
			f.Down.Blackhole = true
		case "both":
			f.Up.Blackhole, f.Down.Blackhole = true, true
		case "off", "none":
			f.Up.Blackhole, f.Down.Blackhole = false, false
		default:
			return faultErr("--blackhole", v, "want up, down, both or off")
		}
	}
	return nil
}

// parseSlice reads MAX or MIN-MAX, then optionally /PAUSE: 1-16/2ms.
func parseSlice(s string) (lo, hi int, pause time.Duration, err error) {
	sizes, p, hasPause := strings.Cut(strings.TrimSpace(s), "/")
	if hasPause {
		if pause, err = units.ParseDuration(p); err != nil || pause < 0 {
			return 0, 0, 0, fmt.Errorf("bad pause %q (want a duration such as 1ms)", p)
		}
	}
	a, b, isRange := strings.Cut(sizes, "-")
	parse := func(x string) (int, error) {
		n, err := units.ParseSize(x)
		if err != nil || n < 1 || n > maxSlice {
			return 0, fmt.Errorf("bad piece size %q (want 1 to 64KiB)", x)
		}
		return int(n), nil
	}
	if hi, err = parse(a); err != nil {
		return 0, 0, 0, err
	}
	lo = 1
	if isRange {
		lo = hi
		if hi, err = parse(b); err != nil {
			return 0, 0, 0, err
		}
		if hi < lo {
			return 0, 0, 0, fmt.Errorf("the smallest piece %d is more than the largest %d", lo, hi)
		}
	}
	return lo, hi, pause, nil
}

// Specs writes f back as the flags that give it (ParseFaults(f.Specs()) is f).
func (f Faults) Specs() FaultSpecs {
	var s FaultSpecs
	dur := func(d time.Duration) string { return d.String() }
	prob := func(p float64) string { return strconv.FormatFloat(p, 'g', -1, 64) }
	size := func(n int64) string { return strconv.FormatInt(n, 10) }
	add := func(list *[]string, up, down bool, upV, downV string) {
		switch {
		case up && down && upV == downV:
			*list = append(*list, upV)
		default:
			if up {
				*list = append(*list, "up:"+upV)
			}
			if down {
				*list = append(*list, "down:"+downV)
			}
		}
	}
	u, d := f.Up, f.Down
	add(&s.Delay, u.Delay > 0, d.Delay > 0, dur(u.Delay), dur(d.Delay))
	add(&s.Jitter, u.Jitter > 0, d.Jitter > 0, dur(u.Jitter), dur(d.Jitter))
	add(&s.Drop, u.Drop > 0, d.Drop > 0, prob(u.Drop), prob(d.Drop))
	add(&s.Rate, u.Rate > 0, d.Rate > 0, size(int64(u.Rate))+"B/s", size(int64(d.Rate))+"B/s")
	add(&s.CutAfter, u.CutBytes > 0, d.CutBytes > 0, size(u.CutBytes), size(d.CutBytes))
	if f.CutTime > 0 {
		s.CutAfter = append(s.CutAfter, dur(f.CutTime))
	}
	if f.CutBytes > 0 {
		s.CutAfter = append(s.CutAfter, size(f.CutBytes))
	}
	add(&s.Reset, u.ResetBytes > 0, d.ResetBytes > 0, size(u.ResetBytes), size(d.ResetBytes))
	add(&s.Reset, u.Reset > 0, d.Reset > 0, prob(u.Reset*100)+"%", prob(d.Reset*100)+"%")
	if f.ResetTime > 0 {
		s.Reset = append(s.Reset, dur(f.ResetTime))
	}
	slice := func(x DirFaults) string {
		v := strconv.Itoa(x.SliceMin) + "-" + strconv.Itoa(x.SliceMax)
		if x.SlicePause > 0 {
			v += "/" + dur(x.SlicePause)
		}
		return v
	}
	add(&s.Slice, u.SliceMax > 0, d.SliceMax > 0, slice(u), slice(d))
	add(&s.Corrupt, u.Corrupt > 0, d.Corrupt > 0, prob(u.Corrupt), prob(d.Corrupt))
	switch {
	case u.Blackhole && d.Blackhole:
		s.Blackhole = []string{"both"}
	case u.Blackhole:
		s.Blackhole = []string{"up"}
	case d.Blackhole:
		s.Blackhole = []string{"down"}
	}
	return s
}

// Join returns the specs of s followed by those of more: parsed, a fault
// given in more replaces the same fault (and direction) of s.
func (s FaultSpecs) Join(more FaultSpecs) FaultSpecs {
	var out FaultSpecs
	to, a, b := out.flags(), s.flags(), more.flags()
	for i := range to {
		*to[i].vals = append(append([]string(nil), *a[i].vals...), *b[i].vals...)
	}
	return out
}
