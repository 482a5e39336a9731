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

// DefaultParallel is how many connections are in flight at once. Each holds
// one descriptor, so this is also the scan's descriptor budget. On loopback
// an attempt is a few microseconds of CPU and a handful in flight per core
// keep every core busy; against a remote host most of the time is waiting
// for an answer, and 100 in flight scan 1,000 filtered ports in 10 timeouts
// rather than 1,000.
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

	states := make([]State, len(ports))
	var (
		next    atomic.Int64 // the next index to try
		mu      sync.Mutex   // guards states and shown
		shown   int          // results before this index were reported
		wg      sync.WaitGroup
		workers = min(o.Parallel, len(ports))
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newProber(ip, o)
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(ports) {
					return
				}
				st, err := p.probe(ctx, ports[i])
				if err != nil {
					cancel(err)
					return
				}
				mu.Lock()
				states[i] = st
				for shown < len(states) && states[shown] != pending {
					report(Result{Port: ports[shown], State: states[shown]})
					shown++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// pollSlice bounds one wait for an answer, so a cancelled scan stops soon.
const pollSlice = 100 * time.Millisecond
