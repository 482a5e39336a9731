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
	"time"

	mrand "math/rand/v2"
)

// Dial connects to a. UDP sockets are connected (Read gets only the peer's
// datagrams); with o.Broadcast they may target a broadcast address. TLS
// handshakes inside Dial, bounded by ctx, so certificate failures surface here
// as a *TLSError. A unixgram client binds its own address so the server can
// answer; it is removed on Close.
//
// With o.Retry, a failed attempt is tried again after a backoff (see
// Options.Backoff), each failure reported on o.Debug; errors that another
// attempt cannot mend (a bad option, a certificate that does not match, a
// proxy that wants credentials) end it at once.
func Dial(ctx context.Context, a Addr, o *Options) (net.Conn, error) {
	if o == nil || o.Retry == 0 {
		return dialOnce(ctx, a, o)
	}
	// Each attempt dials without retries, so a transport that dials another
	// underneath (ws:// over tcp://) does not retry twice over.
	once := *o
	once.Retry = 0
	for attempt := 1; ; attempt++ {
		c, err := dialOnce(ctx, a, &once)
		if err == nil {
			if attempt > 1 {
				o.debugf("connect %s: attempt %d succeeded", a, attempt)
			}
			return c, nil
		}
		last := o.Retry != RetryForever && attempt > o.Retry
		if ctx.Err() != nil || !Retryable(err) || last {
			if attempt > 1 {
				err = &RetryError{Attempts: attempt, Err: err}
			}
			return nil, err
		}
		wait := o.NextBackoff(attempt)
		of := ""
		if o.Retry != RetryForever {
			of = fmt.Sprintf(" of %d", o.Retry+1)
		}
		o.debugf("connect %s: attempt %d%s failed: %s; trying again in %v", a, attempt, of, Cause(opCause(err)), wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop() // stopped while waiting (a signal): that, not the last failure, is the news
			return nil, &OpError{Op: "connect", Addr: a, Err: ctx.Err()}
		case <-t.C:
		}
	}
}

// RetryError is the last failure of a Dial that tried more than once.
type RetryError struct {
	Attempts int
	Err      error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%v (gave up after %d attempts)", e.Err, e.Attempts)
}
func (e *RetryError) Unwrap() error { return e.Err }

// opCause is the cause inside an *OpError, for a line that names the
// address already.
func opCause(err error) error {
	var oe *OpError
	if errors.As(err, &oe) && oe.Hint == "" {
		return oe.Err
	}
	return err
}

// Retryable reports a dial failure another attempt may not meet: not a bad
// option or address, not a certificate that fails verification, not a
// proxy that wants other credentials.
func Retryable(err error) bool {
	var te *TLSError
	var ae *AddrError
	switch {
	case errors.Is(err, ErrBadOption), errors.Is(err, ErrProxyAuth), errors.As(err, &ae):
		return false
	case errors.As(err, &te):
		return te.Kind == nil // a handshake cut short may go better next time
	}
	return true
}

// NextBackoff is the wait after failed attempt n (1, 2, ...): Backoff
// doubled n-1 times, at most BackoffMax, drawn from its upper half
// ("equal jitter").
func (o *Options) NextBackoff(n int) time.Duration {
	base, ceil := 100*time.Millisecond, 5*time.Second
	if o != nil && o.Backoff > 0 {
		base = o.Backoff
	}
	if o != nil && o.BackoffMax > 0 {
		ceil = o.BackoffMax
	}
	d := base
	for i := 1; i < n && d < ceil; i++ {
		d *= 2
	}
	d = min(d, ceil)
	return d/2 + mrand.N(d/2+1)
}

func dialOnce(ctx context.Context, a Addr, o *Options) (net.Conn, error) {
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
	var c net.Conn
	var err error
	if o != nil && o.Proxy != nil && a.OverTCP() {
		o.debugf("connect %s through proxy %s (%s)", a, o.Proxy, o.Proxy.From)
		c, err = dialProxy(ctx, &d, a, o.Proxy)
	} else {
		c, err = d.DialContext(ctx, a.Network(), a.HostPort())
	}
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

// dialProxy connects to the proxy and asks it for a tunnel to a.
func dialProxy(ctx context.Context, d *net.Dialer, a Addr, p *Proxy) (net.Conn, error) {
	network := "tcp"
	c, err := d.DialContext(ctx, network, p.Host)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err
		}
		return nil, p.fail(false, "cannot be reached: %s", Cause(err))
	}
	if err := p.tunnel(ctx, c, a.HostPort()); err != nil {
		c.Close()
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		return &tunnelConn{TCPConn: tc, remote: tunnelAddr(a.HostPort())}, nil
	}
	return c, nil
}

// tunnelConn is a connection through a proxy: its remote address is the
// target (as given: the proxy may have resolved its name), not the proxy,
// so output, recordings and replays name the peer.
type tunnelConn struct {
	*net.TCPConn
	remote net.Addr
}

func (c *tunnelConn) RemoteAddr() net.Addr { return c.remote }

// tunnelAddr is a target's host:port.
type tunnelAddr string

func (tunnelAddr) Network() string  { return "tcp" }
func (a tunnelAddr) String() string { return string(a) }

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
