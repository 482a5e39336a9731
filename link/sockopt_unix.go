//go:build unix

package link

import "syscall"

// setBroadcast sets SO_BROADCAST either way: Go turns it on for every UDP
// socket, and wirecat wants broadcast only when asked for (like nc -b).
func setBroadcast(rc syscall.RawConn, on bool) error {
	v := 0
	if on {
		v = 1
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, v)
	}); err != nil {
		return err
	}
	return serr
}

// setReadBuffer asks for an n-byte receive buffer (the kernel caps it at
// net.core.rmem_max); best effort.
func setReadBuffer(rc syscall.RawConn, n int) {
	rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n) })
}
