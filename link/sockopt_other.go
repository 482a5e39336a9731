//go:build !unix && !windows

package link

import (
	"errors"
	"syscall"
)

func setBroadcast(_ syscall.RawConn, on bool) error {
	if !on {
		return nil
	}
	return errors.New("broadcast is not supported on this system")
}

func setReadBuffer(syscall.RawConn, int) {}
