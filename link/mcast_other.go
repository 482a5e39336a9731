//go:build !linux

package link

import (
	"errors"
	"net"
	"syscall"
)

func setMulticastInterface(syscall.RawConn, *net.Interface, bool) error {
	return errors.New("choosing the multicast interface is supported on linux only")
}
