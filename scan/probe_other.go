//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package scan

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
)

// work tries the ports through the net package where raw sockets are not
// wired: Parallel goroutines, one connection each.
func work(ctx context.Context, ip netip.Addr, o Options, t *tally) error {
	d := net.Dialer{Timeout: o.Timeout}
	if o.Source.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: o.Source.AsSlice()}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range min(o.Parallel, len(t.ports)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i, ok := t.take()
				if !ok {
					return
				}
				st, err := probe(ctx, &d, ip, t.ports[i])
				if err != nil {
					cancel(err)
					return
				}
				t.record(i, st)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func probe(ctx context.Context, d *net.Dialer, ip netip.Addr, port uint16) (State, error) {
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), strconv.Itoa(int(port))))
	if err == nil {
		c.Close()
		return Open, nil
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return Closed, nil
	case ctx.Err() != nil:
		return 0, context.Cause(ctx)
	case errors.As(err, &ne) && ne.Timeout():
		return Silent, nil
	}
	return 0, err
}
