package scan

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultParallel is how many connections wait for an answer at once. Each
// holds one descriptor, so this is also the scan's descriptor budget. On
// loopback nearly every port answers before connect returns and little is
// ever in flight; against a remote host most of the time is waiting, and
// 100 in flight scan 1,000 filtered ports in 10 timeouts rather than 1,000.
const DefaultParallel = 100

// DefaultTimeout is how long a port may take to answer when no timeout is
// given: a filtered port never answers, and the kernel would wait about two
// minutes for each one.
const DefaultTimeout = 2 * time.Second

// Options shape a scan.
type Options struct {
	Timeout  time.Duration // how long one port may take to answer (0: DefaultTimeout)
	Parallel int           // connections in flight at once (0: DefaultParallel)
	Source   netip.Addr    // the local address to connect from (zero: the system's choice)
}

// State is what a port answered.
type State uint8

const (
	pending State = iota
	Closed        // refused (a RST)
	Open          // accepted a connection
	Silent        // no answer within the timeout (filtered)
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case Silent:
		return "no answer"
	}
	return "pending"
}

// Result is one port's answer.
type Result struct {
	Port  uint16
	State State
}

// Scan tries every port of ip and calls report for each, in the order of
// ports, from one goroutine at a time. It stops early, with an error, when
// ctx ends or the machine itself fails (no descriptors left, no route to
// the host): those would make every later port look closed.
func Scan(ctx context.Context, ip netip.Addr, ports Ports, o Options, report func(Result)) error {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	o.Parallel = fitLimit(o.Parallel)
	if o.Source.IsValid() && o.Source.Unmap().Is4() != ip.Unmap().Is4() {
		return fmt.Errorf("source %s and host %s are not the same IP version", o.Source, ip)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	t := &tally{ports: ports, states: make([]State, len(ports)), report: report}
	if err := work(ctx, ip, o, t); err != nil {
		cancel(err)
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// tally hands out the ports to try and reports the answers in order.
type tally struct {
	ports  Ports
	next   atomic.Int64 // the next index to try
	mu     sync.Mutex   // guards states and shown
	states []State
	shown  int // answers before this index were reported
	report func(Result)
}

// take returns the index of the next port to try, or false when none is left.
func (t *tally) take() (int, bool) {
	i := int(t.next.Add(1) - 1)
	return i, i < len(t.ports)
}

// record notes port i's answer and reports every answer now in order.
func (t *tally) record(i int, st State) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.states[i] = st
	for t.shown < len(t.states) && t.states[t.shown] != pending {
		t.report(Result{Port: t.ports[t.shown], State: t.states[t.shown]})
		t.shown++
	}
}

// pollSlice bounds one wait for an answer, so a cancelled scan stops soon.
const pollSlice = 100 * time.Millisecond
