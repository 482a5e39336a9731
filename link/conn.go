package link

import (
	"crypto/tls"
	"net"
)

type closeWriter interface{ CloseWrite() error }

// CanCloseWrite reports whether c can shut down its write side alone (TCP,
// Unix stream, TLS), keeping the read side open.
func CanCloseWrite(c net.Conn) bool {
	switch c := c.(type) {
	case *tls.Conn:
		_, ok := c.NetConn().(closeWriter)
		return ok
	case *net.UDPConn, *unlinkConn:
		return false
	case *net.UnixConn:
		return isUnixStream(c)
	case closeWriter:
		return true
	}
	return false
}

// CloseWrite half-closes c: the peer reads EOF while c can still read. For
// TLS it sends close_notify and then shuts the TCP write side, so peers that
// ignore close_notify still see EOF. Datagram conns and conns without a write
// side of their own are left untouched and nil is returned; use CanCloseWrite
// to know which happened.
func CloseWrite(c net.Conn) error {
	if !CanCloseWrite(c) {
		return nil
	}
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.CloseWrite(); err != nil {
			return err
		}
		return tc.NetConn().(closeWriter).CloseWrite()
	}
	return c.(closeWriter).CloseWrite()
}

func isUnixStream(c *net.UnixConn) bool {
	if a, ok := c.LocalAddr().(*net.UnixAddr); ok && a.Net == "unixgram" {
		return false
	}
	if a, ok := c.RemoteAddr().(*net.UnixAddr); ok && a.Net == "unixgram" {
		return false
	}
	return true
}
