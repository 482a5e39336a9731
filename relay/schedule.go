package relay

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wirecat-dev/wirecat/units"
)

// Plan is a relay's fault schedule, timed from the moment it starts
// listening: steps that change the faults, and outages.
type Plan struct {
	Steps   []Step
	Outages []Window
}

// Step puts Faults in force from At on (until the next step).
type Step struct {
	At     time.Duration
	Faults Faults
	Text   string // as given, for the log
}

// Window is an outage from At to At+For. Without Hold, new clients are
// refused (reset at once) and the pairs open when it starts are reset; with
// Hold, nothing moves: new clients wait to be connected, open pairs forward
// nothing, and every byte waits (none is lost) until it ends.
// once) and the pairs open when it starts are reset.
type Window struct {
	At, For time.Duration
	Hold    bool
}

func (w Window) String() string {
	flag := "--down"
	if w.Hold {
		flag = "--hold"
	}
	return fmt.Sprintf("%s %v@%v", flag, w.For, w.At)
}

// Empty reports whether the plan does nothing.
func (p Plan) Empty() bool { return len(p.Steps) == 0 && len(p.Outages) == 0 }

// ParseDown reads --down DUR@START values (an outage of DUR starting START
// after the relay starts listening); windows may not overlap.
func ParseDown(vals []string) ([]Window, error) { return ParseOutages(vals, nil) }

// ParseOutages reads --down and --hold values (DUR@START); no two windows
// may overlap.
func ParseOutages(down, hold []string) ([]Window, error) {
	var ws []Window
	for _, list := range []struct {
		flag string
		vals []string
	}{{"--down", down}, {"--hold", hold}} {
		for _, v := range list.vals {
			d, at, ok := strings.Cut(strings.TrimSpace(v), "@")
			if !ok {
				return nil, faultErr(list.flag, v, "want DURATION@START, e.g. 5s@30s (from 30 s to 35 s)")
			}
			dur, err := units.ParseDuration(d)
			if err != nil || dur <= 0 {
				return nil, faultErr(list.flag, v, fmt.Sprintf("bad duration %q (want more than 0, e.g. 5s)", d))
			}
			start, err := units.ParseDuration(at)
			if err != nil || start < 0 {
				return nil, faultErr(list.flag, v, fmt.Sprintf("bad start %q (want a time from the start, e.g. 30s)", at))
			}
			ws = append(ws, Window{At: start, For: dur, Hold: list.flag == "--hold"})
		}
	}
	slices.SortFunc(ws, func(a, b Window) int { return int(a.At - b.At) })
	for i := 1; i < len(ws); i++ {
		if prev := ws[i-1]; ws[i].At < prev.At+prev.For {
			return nil, fmt.Errorf("%w: %v overlaps %v (it ends at %v)", ErrBadFault, ws[i], prev, prev.At+prev.For)
		}
	}
	return ws, nil
}

// ParseAt reads --at values: a time from the start, then fault flags as on
// the command line ("30s --delay up:200ms --drop 5%"). From that time on,
// the faults in force are base's with the step's flags on top (a step with
// no flags goes back to base). Two steps may not share a time.
func ParseAt(vals []string, base FaultSpecs) ([]Step, error) {
	var steps []Step
	for _, v := range vals {
		words := strings.Fields(v)
		if len(words) == 0 {
			return nil, faultErr("--at", v, "want a time and fault flags, e.g. '30s --delay 200ms'")
		}
		at, err := units.ParseDuration(strings.TrimSuffix(words[0], ":"))
		if err != nil || at < 0 {
			return nil, faultErr("--at", v, fmt.Sprintf("bad time %q (want a time from the start, e.g. 30s)", words[0]))
		}
		var spec FaultSpecs
		rest := words[1:]
		for len(rest) > 0 {
			name, val, hasVal := strings.Cut(rest[0], "=")
			rest = rest[1:]
			if !hasVal {
				if len(rest) == 0 || strings.HasPrefix(rest[0], "--") {
					return nil, faultErr("--at", v, fmt.Sprintf("%s needs a value", name))
				}
				val, rest = rest[0], rest[1:]
			}
			for _, one := range strings.Split(val, ",") { // as on the command line
				if !spec.set(name, one) {
					return nil, faultErr("--at", v, fmt.Sprintf("unknown fault %q (want --delay, --jitter, --drop, --rate, --cut-after, --reset, --slice, --corrupt or --blackhole)", name))
				}
			}
		}
		f, err := ParseFaults(base.Join(spec))
		if err != nil {
			return nil, fmt.Errorf("--at %q: %w", v, err)
		}
		steps = append(steps, Step{At: at, Faults: f, Text: v})
	}
	slices.SortStableFunc(steps, func(a, b Step) int { return int(a.At - b.At) })
	for i := 1; i < len(steps); i++ {
		if steps[i].At == steps[i-1].At {
			return nil, fmt.Errorf("%w: --at %q and --at %q are both at %v", ErrBadFault, steps[i-1].Text, steps[i].Text, steps[i].At)
		}
	}
	return steps, nil
}

// RunPlan applies plan, timed from now, until ctx ends. Each change is
// made on its own timer against the start, so lateness does not add up.
func (r *Relay) RunPlan(ctx context.Context, plan Plan) {
	start := time.Now()
	type change struct {
		at time.Duration
		do func()
	}
	var cs []change
	for _, s := range plan.Steps {
		cs = append(cs, change{s.At, func() {
			r.SetFaults(s.Faults)
			r.cfg.Log.Notef("schedule: at %v: faults now: %s", s.At, describe(s.Faults))
		}})
	}
	for _, w := range plan.Outages {
		if w.Hold {
			cs = append(cs, change{w.At, func() {
				r.SetHold(true)
				r.cfg.Log.Notef("schedule: stall from %v to %v: new clients wait, open connections forward nothing; bytes wait", w.At, w.At+w.For)
			}}, change{w.At + w.For, func() {
				r.SetHold(false)
				r.cfg.Log.Notef("schedule: stall over at %v: bytes flow again", w.At+w.For)
			}})
			continue
		}
		cs = append(cs, change{w.At, func() {
			n := r.SetDown(fmt.Sprintf("outage (%v)", w))
			r.cfg.Log.Notef("schedule: outage from %v to %v: new clients are refused (reset at once); %d open connection(s) reset", w.At, w.At+w.For, n)
		}}, change{w.At + w.For, func() {
			r.SetDown("")
			r.cfg.Log.Notef("schedule: outage over at %v: accepting clients again", w.At+w.For)
		}})
	}
	// Ends before starts at the same time: back-to-back windows stay down.
	slices.SortStableFunc(cs, func(a, b change) int { return int(a.at - b.at) })
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for _, c := range cs {
		t.Reset(time.Until(start.Add(c.at)))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.do()
	}
}

// describe is faults as flags, or "none".
func describe(f Faults) string {
	if a := f.Specs().Args(); len(a) > 0 {
		return strings.Join(a, " ")
	}
	return "none"
}
