//go:build unix

package link

import (
	"errors"
	"net"
	"syscall"
)

// clientError reports whether accept failed for one client's sake: Linux
// passes a pending network error of the new connection to accept, and
// accept(2) says to treat those like EAGAIN (EPERM: a firewall rule).
func clientError(err error) bool {
	for _, e := range []syscall.Errno{syscall.ENETDOWN, syscall.EPROTO, syscall.ENOPROTOOPT, syscall.EHOSTDOWN,
		syscall.EHOSTUNREACH, syscall.EOPNOTSUPP, syscall.ENETUNREACH, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// shedBacklog accepts and closes up to max clients waiting on ln without
// blocking, and returns how many. It needs one free descriptor.
func shedBacklog(ln net.Listener, max int) int {
	sc, ok := ln.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return 0
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	// Control, not Read: a listener's RawConn refuses Read.
	raw.Control(func(fd uintptr) {
		for n < max {
			// The listener is non-blocking: EAGAIN once the backlog is empty.
			nfd, _, err := syscall.Accept(int(fd))
			if err == nil {
				syscall.Close(nfd)
				n++
				continue
			}
			if err != syscall.EINTR && err != syscall.ECONNABORTED {
				break
			}
		}
	})
	return n
}
