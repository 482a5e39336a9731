//go:build !unix

package pipe

import "net"

// readDatagram reads one datagram, flushing the output before every read.
func readDatagram(c any, buf []byte, flush func() error) (int, net.Addr, error) {
	return readPlain(c, buf, flush)
}
