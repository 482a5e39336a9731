package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// Listen opens a listener for tcp*, tls, dtls and unix addresses (a dtls
// listener is a *DTLSListener: see there), and a *WSListener for ws and
// wss ones. A tls
// listener is a *TLSListener; its conns handshake lazily (see Handshake). A
// unix listener replaces a stale socket file nobody listens on, refuses one
// that is alive, and removes its file on Close. A serial port or a pty is a
// listener with one peer at a time (see ttyListener).
func Listen(ctx context.Context, a Addr, o *Options) (net.Listener, error) {
	if a.Scheme == "dtls" {
		return listenDTLS(a, o)
	}
	if err := checkPSK("listen", a, o); err != nil {
		return nil, err
	}
	if a.IsWebSocket() {
		return listenWS(ctx, a, o)
	}
	if !a.Stream() {
		return nil, &OpError{Op: "listen", Addr: a, Err: fmt.Errorf("%s is a datagram transport (use ListenPacket)", a.Transport())}
	}
	if a.IsTTY() {
		return listenTTY(a, o)
	}
	var cfg *tls.Config
	if a.Scheme == "tls" {
		var err error
		if cfg, err = ServerConfig(a, o); err != nil {
			return nil, err
		}
	}
	if a.Scheme == "unix" {
		if err := clearStale(a); err != nil {
			return nil, err
		}
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, a.Network(), a.HostPort())
	if err != nil {
		return nil, &OpError{Op: "listen", Addr: a, Err: err}
	}
	if cfg == nil {
		return l, nil
	}
	tl := &TLSListener{
		Listener:    tls.NewListener(l, cfg),
		Config:      cfg,
		Fingerprint: Fingerprint(cfg.Certificates[0].Certificate[0]),
		inner:       l,
	}
	if o == nil || o.TLS.Cert == "" {
		o.logf("tls: ephemeral self-signed certificate %s", tl.Fingerprint)
	}
	return tl, nil
}

// ListenPacket opens a datagram socket for udp* and unixgram addresses. A
// multicast group host (224.0.0.0/4, ff00::/8) is joined on the system's
// default multicast interface, or on loopback when there is none. A unixgram
// socket file is removed on Close.
func ListenPacket(ctx context.Context, a Addr, o *Options) (net.PacketConn, error) {
	if !a.Packet() {
		return nil, &OpError{Op: "listen", Addr: a, Err: fmt.Errorf("%s is a stream transport (use Listen)", a.Transport())}
	}
	if err := checkPSK("listen", a, o); err != nil {
		return nil, err
	}
	if a.Scheme == "unixgram" {
		if err := clearStale(a); err != nil {
			return nil, err
		}
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: a.Path, Net: "unixgram"})
		if err != nil {
			return nil, &OpError{Op: "listen", Addr: a, Err: err}
		}
		if strings.HasPrefix(a.Path, "@") {
			return c, nil
		}
		return &unlinkConn{UnixConn: c, path: a.Path}, nil
	}
	if a.IsMulticast() {
		return listenMulticast(a, o)
	}
	broadcast := o != nil && o.Broadcast
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error { return setBroadcast(rc, broadcast) }}
	c, err := lc.ListenPacket(ctx, a.Network(), a.HostPort())
	if err != nil {
		return nil, &OpError{Op: "listen", Addr: a, Err: err}
	}
	return c, nil
}

func listenMulticast(a Addr, o *Options) (net.PacketConn, error) {
	group, err := net.ResolveUDPAddr(a.Network(), a.HostPort())
	if err != nil {
		return nil, &OpError{Op: "listen", Addr: a, Err: err}
	}
	ifi, err := optInterface(o)
	if err != nil {
		return nil, &OpError{Op: "listen", Addr: a, Err: err}
	}
	c, err := net.ListenMulticastUDP(a.Network(), ifi, group)
	if err != nil && ifi == nil {
		// No default route (an offline board, a container): join on loopback.
		lo, lerr := loopbackInterface()
		if lerr != nil {
			return nil, &OpError{Op: "listen", Addr: a, Err: err}
		}
		var err2 error
		if c, err2 = net.ListenMulticastUDP(a.Network(), lo, group); err2 != nil {
			return nil, &OpError{Op: "listen", Addr: a, Err: err, Hint: "joining on " + lo.Name + " failed too: " + Cause(err2)}
		}
	}
	if err != nil {
		return nil, &OpError{Op: "listen", Addr: a, Err: err}
	}
	rc, err := c.SyscallConn()
	if err == nil {
		err = setBroadcast(rc, o != nil && o.Broadcast)
	}
	if err != nil {
		c.Close()
		return nil, &OpError{Op: "listen", Addr: a, Err: err}
	}
	return c, nil
}

func optInterface(o *Options) (*net.Interface, error) {
	if o == nil || o.Interface == "" {
		return nil, nil
	}
	ifi, err := net.InterfaceByName(o.Interface)
	if err != nil {
		return nil, fmt.Errorf("no network interface %q", o.Interface)
	}
	return ifi, nil
}

func loopbackInterface() (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range ifs {
		if ifs[i].Flags&net.FlagLoopback != 0 && ifs[i].Flags&net.FlagUp != 0 {
			return &ifs[i], nil
		}
	}
	return nil, errors.New("no loopback interface")
}

// clearStale removes a socket file left by a dead process: bind would fail
// with "address already in use" although nobody listens. A live socket, or a
// path that is not a socket, is left alone and reported.
func clearStale(a Addr) error {
	if strings.HasPrefix(a.Path, "@") {
		return nil // abstract: no file
	}
	fi, err := os.Lstat(a.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &OpError{Op: "listen", Addr: a, Err: err}
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return &OpError{Op: "listen", Addr: a, Err: errors.New("file exists and is not a socket")}
	}
	if a.Scheme == "unix" {
		// Ask the kernel's table first: connecting would make us the peer
		// of a one-shot listener, which would serve us and exit.
		if alive, known := unixListening(a.Path); known {
			if alive {
				return &OpError{Op: "listen", Addr: a, Err: syscall.EADDRINUSE, Hint: "another process is listening on it"}
			}
			return removeStale(a)
		}
	}
	c, err := net.DialTimeout(a.Network(), a.Path, time.Second)
	if err == nil {
		c.Close()
		return &OpError{Op: "listen", Addr: a, Err: syscall.EADDRINUSE, Hint: "another process is listening on it"}
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return removeStale(a)
	}
	return nil // anything else: let bind report it
}

// removeStale removes a socket file nobody listens on.
func removeStale(a Addr) error {
	if err := os.Remove(a.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &OpError{Op: "listen", Addr: a, Err: err, Hint: "cannot remove the stale socket"}
	}
	return nil
}
