//go:build linux || darwin || freebsd || netbsd || openbsd

package scan

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// work tries the ports with raw non-blocking sockets: one worker per core,
// each keeping its share of Parallel connections in flight and waiting for
// them with one poll. On loopback a refused port costs four system calls
// (socket, connect, getsockopt, close) and no wait; a goroutine per
// connection would spend more switching between them than connecting
// (2.5 times slower measured on 2 cores), and the net package would also
// register every socket with its poller.
func work(ctx context.Context, ip netip.Addr, o Options, t *tally) error {
	n := min(runtime.GOMAXPROCS(0), o.Parallel, len(t.ports))
	per := (o.Parallel + n - 1) / n
	ctx, cancel := context.WithCancel(ctx) // one failing worker stops the others
	defer cancel()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(ip, o, per)
			defer w.closeAll()
			if err := w.run(ctx, t); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // the first error, or nil
}

// flight is a connection waiting for its answer.
type flight struct {
	fd       int
	i        int // index in the tally
	deadline time.Time
}

type worker struct {
	ip      netip.Addr
	family  int
	source  unix.Sockaddr
	timeout time.Duration
	max     int
	flying  []flight
	pfds    []unix.PollFd
}

func newWorker(ip netip.Addr, o Options, max int) *worker {
	w := &worker{ip: ip.Unmap(), timeout: o.Timeout, family: unix.AF_INET, max: max}
	if w.ip.Is6() {
		w.family = unix.AF_INET6
	}
	if o.Source.IsValid() {
		w.source = sockaddr(o.Source.Unmap(), 0)
	}
	return w
}

func sockaddr(ip netip.Addr, port uint16) unix.Sockaddr {
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: int(port), Addr: ip.As4()}
	}
	sa := &unix.SockaddrInet6{Port: int(port), Addr: ip.As16()}
	if z := ip.Zone(); z != "" {
		if ifi, err := netInterfaceIndex(z); err == nil {
			sa.ZoneId = uint32(ifi)
		}
	}
	return sa
}

// run starts connections while there is room and ports left, and collects
// their answers, until every port it took is answered.
func (w *worker) run(ctx context.Context, t *tally) error {
	more := true
	for {
		for more && len(w.flying) < w.max {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			i, ok := t.take()
			if !ok {
				more = false
				break
			}
			st, err := w.start(i, t.ports[i])
			if err != nil {
				return err
			}
			if st != pending {
				t.record(i, st)
			}
		}
		if len(w.flying) == 0 {
			if !more {
				return nil
			}
			continue
		}
		if err := w.wait(ctx, t); err != nil {
			return err
		}
	}
}

// start connects to port: the answer when it is already known (on
// loopback, nearly always), or pending with the socket in flight.
func (w *worker) start(i int, port uint16) (State, error) {
	fd, err := socket(w.family)
	if err != nil {
		return 0, fmt.Errorf("socket: %w", err)
	}
	if w.source != nil {
		if err := unix.Bind(fd, w.source); err != nil {
			unix.Close(fd)
			return 0, fmt.Errorf("bind the source address: %w", err)
		}
	}
	err = unix.Connect(fd, sockaddr(w.ip, port))
	if errors.Is(err, unix.EINPROGRESS) || errors.Is(err, unix.EINTR) {
		// A refusal on loopback is already the socket's error: no poll.
		soerr, gerr := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if gerr == nil && soerr == 0 {
			w.flying = append(w.flying, flight{fd: fd, i: i, deadline: time.Now().Add(w.timeout)})
			return pending, nil
		}
		err = unix.Errno(soerr)
	}
	unix.Close(fd)
	if err == nil {
		return Open, nil
	}
	return answer(err)
}

// wait polls the connections in flight once, at most until the earliest
// deadline or pollSlice, and records those that answered or timed out.
func (w *worker) wait(ctx context.Context, t *tally) error {
	now := time.Now()
	first := w.flying[0].deadline
	w.pfds = w.pfds[:0]
	for _, f := range w.flying {
		w.pfds = append(w.pfds, unix.PollFd{Fd: int32(f.fd), Events: unix.POLLOUT})
		if f.deadline.Before(first) {
			first = f.deadline
		}
	}
	ms := 0
	if left := first.Sub(now); left > 0 {
		ms = int(min(left, pollSlice).Milliseconds()) + 1
	}
	if _, err := unix.Poll(w.pfds, ms); err != nil && !errors.Is(err, unix.EINTR) {
		return fmt.Errorf("poll: %w", err)
	}
	now = time.Now()
	// w.flying is compacted in place: the answered sockets are closed and
	// dropped, the others kept. On an error every socket not yet closed must
	// stay in w.flying, once, for closeAll: a stale entry would close a
	// descriptor that another worker may have been given since.
	kept := w.flying[:0]
	for k, f := range w.flying {
		var st State
		switch {
		case w.pfds[k].Revents != 0:
			soerr, err := unix.GetsockoptInt(f.fd, unix.SOL_SOCKET, unix.SO_ERROR)
			switch {
			case err != nil:
				w.flying = append(kept, w.flying[k:]...)
				return fmt.Errorf("getsockopt: %w", err)
			case soerr == 0:
				st = Open
			default:
				if st, err = answer(unix.Errno(soerr)); err != nil {
					w.flying = append(kept, w.flying[k:]...)
					return err
				}
			}
		case !now.Before(f.deadline):
			st = Silent
		default:
			kept = append(kept, f)
			continue
		}
		unix.Close(f.fd)
		t.record(f.i, st)
	}
	w.flying = kept
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

func (w *worker) closeAll() {
	for _, f := range w.flying {
		unix.Close(f.fd)
	}
	w.flying = nil
}

// answer sorts a failed connect: the port said no, or the machine or the
// network failed and the scan cannot go on.
func answer(err error) (State, error) {
	switch {
	case errors.Is(err, unix.ECONNREFUSED), errors.Is(err, unix.ECONNRESET):
		return Closed, nil
	case errors.Is(err, unix.ETIMEDOUT):
		return Silent, nil
	}
	return 0, err
}
