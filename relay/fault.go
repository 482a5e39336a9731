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
}

// DirFaults are the faults of one direction.
type DirFaults struct {
	Delay  time.Duration // each message waits this long
	Jitter time.Duration // ± this much, uniformly; never more than Delay
	Drop   float64       // probability that a message is dropped, 0..1
	Rate   float64       // bytes per second, 0: unlimited
	// CutBytes closes the pair once this direction carried this many bytes.
	CutBytes int64
}

func (d DirFaults) active() bool {
	return d.Delay > 0 || d.Jitter > 0 || d.Drop > 0 || d.Rate > 0 || d.CutBytes > 0
}

// queued reports whether messages must wait in a queue rather than be
// written as they come.
func (d DirFaults) queued() bool { return d.Delay > 0 || d.Rate > 0 }

// Active reports whether any fault is set.
func (f Faults) Active() bool {
	return f.Up.active() || f.Down.active() || f.CutTime > 0 || f.CutBytes > 0
}

// FaultSpecs are the fault flags as typed. Every value reads
// `[up:|down:]VALUE`: `up:` is client → server, `down:` server → client,
// no prefix both directions.
type FaultSpecs struct {
	Delay, Jitter, Drop, Rate, CutAfter []string
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

// splitDir cuts an `up:` or `down:` prefix off a fault value.
// checkDirs refuses a direction other than up: and down: (sideways:10ms is
// an unknown direction, not a bad duration).
func checkDirs(s FaultSpecs) error {
	for _, fl := range []struct {
		name string
		vals []string
	}{{"--delay", s.Delay}, {"--jitter", s.Jitter}, {"--drop", s.Drop}, {"--rate", s.Rate}, {"--cut-after", s.CutAfter}} {
		for _, v := range fl.vals {
			dir, _, ok := strings.Cut(v, ":")
			if ok && dir != "up" && dir != "down" {
				return faultErr(fl.name, v, fmt.Sprintf("unknown direction %q (want up:, down:, or no prefix for both)", dir))
			}
		}
	}
	return nil
}

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
