//go:build unix

package pipe

import (
	"net"
	"syscall"
)

// readDatagram reads one datagram. When none is waiting it flushes the
// output first, so a burst is written out in one go and a lone datagram
// never waits in a buffer.
func readDatagram(c any, buf []byte, flush func() error) (int, net.Addr, error) {
	sc, ok := c.(syscall.Conn)
	if !ok || flush == nil {
		return readPlain(c, buf, flush)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return readPlain(c, buf, flush)
	}
	var (
		n     int
		from  syscall.Sockaddr
		rerr  error
		tried bool
	)
	err = rc.Read(func(fd uintptr) bool {
		n, from, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
		if rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK {
			if !tried {
				flush()
				tried = true
			}
			return false // wait until readable, then try again
		}
		return true
	})
	if err != nil {
		return 0, nil, err
	}
	if rerr != nil {
		return 0, nil, &net.OpError{Op: "read", Net: "udp", Err: rerr}
	}
	return n, sockaddrToAddr(c, from), nil
}

func sockaddrToAddr(c any, sa syscall.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.UDPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}
	case *syscall.SockaddrInet6:
		return &net.UDPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}
	case *syscall.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: "unixgram"}
	}
	if pc, ok := c.(net.Conn); ok {
		return pc.RemoteAddr() // a connected socket reports no source
	}
	return nil
}
