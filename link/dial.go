package link

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
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
	switch a.Scheme {
	case "unixgram":
		return dialUnixgram(a)
	case "tls":
		cfg, err := ClientConfig(a, o)
		if err != nil {
			return nil, err
		}
		raw, err := dialNet(ctx, a, nil)
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
	c, err := d.DialContext(ctx, a.Network(), a.HostPort())
	if err != nil {
		e := &OpError{Op: "connect", Addr: a, Err: err}
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
