//go:build linux || darwin || freebsd || netbsd || openbsd

package scan

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// prober connects with raw non-blocking sockets: on loopback a refused
// port costs four system calls (socket, connect, getsockopt, close), where the
// net package would also register and unregister every socket with the
// poller.
type prober struct {
	ip      netip.Addr
	family  int
	source  unix.Sockaddr
	timeout time.Duration
}

func newProber(ip netip.Addr, o Options) *prober {
	p := &prober{ip: ip.Unmap(), timeout: o.Timeout, family: unix.AF_INET}
	if p.ip.Is6() {
		p.family = unix.AF_INET6
	}
	if o.Source.IsValid() {
		p.source = sockaddr(o.Source.Unmap(), 0)
	}
	return p
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

func (p *prober) probe(ctx context.Context, port uint16) (State, error) {
	fd, err := socket(p.family)
	if err != nil {
		return 0, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	if p.source != nil {
		if err := unix.Bind(fd, p.source); err != nil {
			return 0, fmt.Errorf("bind the source address: %w", err)
		}
	}
	err = unix.Connect(fd, sockaddr(p.ip, port))
	switch {
	case err == nil:
		return Open, nil
	case errors.Is(err, unix.EINPROGRESS), errors.Is(err, unix.EINTR):
		return p.wait(ctx, fd)
	}
	return answer(err)
}

// wait polls for the connect's outcome, in slices so a cancel is seen.
func (p *prober) wait(ctx context.Context, fd int) (State, error) {
	// On loopback the answer is usually there already: a refusal shows as
	// the socket's error without a poll (one system call saved per port).
	if soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && soerr != 0 {
		return answer(unix.Errno(soerr))
	}
	deadline := time.Now().Add(p.timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return Silent, nil
		}
		ms := int(min(left, pollSlice).Milliseconds()) + 1
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, ms)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return 0, fmt.Errorf("poll: %w", err)
		}
		if n > 0 {
			soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if err != nil {
				return 0, fmt.Errorf("getsockopt: %w", err)
			}
			if soerr == 0 {
				return Open, nil
			}
			return answer(unix.Errno(soerr))
		}
		if ctx.Err() != nil {
			return 0, context.Cause(ctx)
		}
	}
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
