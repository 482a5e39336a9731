//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package scan

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// prober connects through the net package where raw sockets are not wired.
type prober struct {
	ip netip.Addr
	d  net.Dialer
}

func newProber(ip netip.Addr, o Options) *prober {
	p := &prober{ip: ip, d: net.Dialer{Timeout: o.Timeout}}
	if o.Source.IsValid() {
		p.d.LocalAddr = &net.TCPAddr{IP: o.Source.AsSlice()}
	}
	return p
}

func (p *prober) probe(ctx context.Context, port uint16) (State, error) {
	c, err := p.d.DialContext(ctx, "tcp", net.JoinHostPort(p.ip.String(), strconv.Itoa(int(port))))
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
