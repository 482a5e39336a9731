package pipe

import (
	"net"
	"net/netip"
)

// datagramSource yields the datagrams arriving on a listener's socket with
// their senders. It flushes the output before it waits, so a burst is
// written out in one go and a lone datagram never waits in a buffer.
type datagramSource interface {
	// next returns the next datagram, valid until the following call, and
	// its sender: ap for a UDP sender (addr may then be nil, to spare an
	// allocation per datagram), addr otherwise.
	next() (data []byte, ap netip.AddrPort, addr net.Addr, err error)
}

// plainSource reads one datagram per call (readDatagram).
type plainSource struct {
	pc    net.PacketConn
	buf   []byte
	flush func() error
}

func (s *plainSource) next() ([]byte, netip.AddrPort, net.Addr, error) {
	n, addr, err := readDatagram(s.pc, s.buf, s.flush)
	if err != nil {
		return nil, netip.AddrPort{}, nil, err
	}
	var ap netip.AddrPort
	if u, ok := addr.(*net.UDPAddr); ok {
		ap = u.AddrPort()
	}
	return s.buf[:n], ap, addr, nil
}
