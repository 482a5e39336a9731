package link

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// Dial connects to a. UDP sockets are connected (Read gets only the peer's
// datagrams); with o.Broadcast they may target a broadcast address. TLS
// handshakes inside Dial, bounded by ctx, so certificate failures surface here
// as a *TLSError. A unixgram client binds its own address so the server can
// answer; it is removed on Close.
func Dial(ctx context.Context, a Addr, o *Options) (net.Conn, error) {
	if a.Scheme == "" {
		return nil, &OpError{Op: "connect", Addr: a, Err: errors.New("empty address")}
	}
	if err := checkPSK("connect", a, o); err != nil {
		return nil, err
	}
	if o != nil && o.Source != "" && (a.IsUnix() || a.IsTTY()) {
		return nil, &OpError{Op: "connect", Addr: a, Err: fmt.Errorf("%w: --source needs an IP transport, not %s", ErrBadOption, a.Scheme)}
	}
	if o != nil && o.Timeout > 0 {
		// -w bounds the whole connect: resolving, the TCP handshake and the
		// TLS one.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	switch a.Scheme {
	case "serial", "pty":
		return dialTTY(ctx, a, o)
	case "ws", "wss":
		return dialWS(ctx, a, o)
	case "unixgram":
		return dialUnixgram(a)
	case "dtls":
		return dialDTLS(ctx, a, o)
	case "tls":
		cfg, err := ClientConfig(a, o)
		if err != nil {
			return nil, err
		}
		raw, err := dialNet(ctx, a, o)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, classifyTLS(a.HostPort(), err, false)
		}
		return tc, nil
	}
	return dialNet(ctx, a, o)
}

func dialNet(ctx context.Context, a Addr, o *Options) (net.Conn, error) {
	d := net.Dialer{}
	if o != nil && o.Source != "" {
		local, err := sourceAddr(a, o.Source)
		if err != nil {
			return nil, &OpError{Op: "connect", Addr: a, Err: err}
		}
		d.LocalAddr = local
	}
	broadcast := o != nil && o.Broadcast
	var ifi *net.Interface
	if a.Packet() && a.IsMulticast() {
		var err error
		if ifi, err = optInterface(o); err != nil {
			return nil, &OpError{Op: "connect", Addr: a, Err: err}
		}
	}
	if a.Transport() == "udp" {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			if err := setBroadcast(rc, broadcast); err != nil {
				return err
			}
			if ifi != nil {
				return setMulticastInterface(rc, ifi, a.Network() == "udp6" || strings.Contains(a.Host, ":"))
			}
			return nil
		}
	}
	// Hold the descriptor gate until the socket exists (Control runs right
	// after socket(2)), so an Acceptor shedding clients at the limit does
	// not lose its spare descriptor to this dial.
	gated := fdGate.hold()
	control := d.Control
	d.Control = func(network, address string, rc syscall.RawConn) error {
		gated.release()
		if control != nil {
			return control(network, address, rc)
		}
		return nil
	}
	c, err := d.DialContext(ctx, a.Network(), a.HostPort())
	gated.release()
	if err != nil {
		e := &OpError{Op: "connect", Addr: a, Err: err}
		// The dialer's own deadline may fire a moment before the context's.
		var ne net.Error
		if o != nil && o.Timeout > 0 && (ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout()) {
			e.Hint = fmt.Sprintf("no answer within --timeout %v", o.Timeout)
		}
		if d.LocalAddr != nil && errors.Is(err, syscall.EADDRNOTAVAIL) {
			e.Hint = "--source " + o.Source + " is not an address of this machine"
		}
		if a.Transport() == "udp" && !broadcast && errors.Is(err, syscall.EACCES) {
			e.Hint = "a broadcast address needs --broadcast"
		}
		return nil, e
	}
	return c, nil
}

// dialUnixgram binds the client to an abstract name on Linux (nothing to clean
// up) and to a temporary file elsewhere.
func dialUnixgram(a Addr) (net.Conn, error) {
	var b [8]byte
	rand.Read(b[:])
	name := fmt.Sprintf("wirecat-%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
	abstract := runtime.GOOS == "linux"
	local := "@" + name
	if !abstract {
		local = filepath.Join(os.TempDir(), name+".sock")
	}
	c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: local, Net: "unixgram"}, &net.UnixAddr{Name: a.Path, Net: "unixgram"})
	if err != nil {
		if !abstract {
			os.Remove(local)
		}
		return nil, &OpError{Op: "connect", Addr: a, Err: err}
	}
	if abstract {
		return c, nil
	}
	return &unlinkConn{UnixConn: c, path: local}, nil
}

// unlinkConn removes the socket file it bound when it is closed.
type unlinkConn struct {
	*net.UnixConn
	path string
}

func (c *unlinkConn) Close() error {
	err := c.UnixConn.Close()
	os.Remove(c.path)
	return err
}

// ParseSource reads -s/--source: an address of this machine to connect
// from, `ADDR` or `ADDR:PORT` (`[v6]:PORT` for IPv6 with a port; a bare
// IPv6 literal is taken whole). The port is 0 (any) when not given.
func ParseSource(s string) (host, port string, err error) {
	bad := func(reason string) (string, string, error) {
		return "", "", &AddrError{Addr: s, Reason: reason}
	}
	if s == "" {
		return bad("empty (want ADDR or ADDR:PORT, e.g. 127.0.0.2 or 127.0.0.2:4000)")
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.String(), "0", nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(s, ":") {
			return bad("want ADDR or ADDR:PORT ([v6]:PORT for IPv6)")
		}
		h, p = s, "0" // a host name
	}
	if reason := checkHost(h); reason != "" {
		return bad(reason)
	}
	n, reason := parsePort(p, "tcp")
	if reason != "" {
		return bad(reason)
	}
	return h, n, nil
}

// sourceAddr resolves --source for a's network.
func sourceAddr(a Addr, source string) (net.Addr, error) {
	host, port, err := ParseSource(source)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOption, err)
	}
	hp := net.JoinHostPort(host, port)
	if a.Transport() == "udp" {
		return net.ResolveUDPAddr(a.Network(), hp)
	}
	return net.ResolveTCPAddr(a.Network(), hp)
}
