//go:build !unix && !windows

package link

import (
	"errors"
	"syscall"
)

func setBroadcast(syscall.RawConn) error {
	return errors.New("broadcast is not supported on this system")
}
