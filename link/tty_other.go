//go:build !linux

package link

import (
	"context"
	"errors"
	"net"
	"runtime"
)

var errNoTTY = errors.New("serial ports and ptys are supported on Linux only, not " + runtime.GOOS)

func dialTTY(_ context.Context, a Addr, _ *Options) (net.Conn, error) {
	return nil, &OpError{Op: "open", Addr: a, Err: errNoTTY}
}

func listenTTY(a Addr, _ *Options) (net.Listener, error) {
	return nil, &OpError{Op: "listen", Addr: a, Err: errNoTTY}
}
