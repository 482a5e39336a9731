//go:build !(linux && (amd64 || arm64))

package pipe

import "net"

// newDatagramSource reads one datagram at a time here.
func newDatagramSource(pc net.PacketConn, flush func() error) datagramSource {
	return &plainSource{pc: pc, buf: make([]byte, 64<<10), flush: flush}
}
