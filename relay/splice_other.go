//go:build !linux

package relay

import (
	"net"
	"sync"
	"time"
)

// copySplice is Linux only: elsewhere the plain path copies in user space.
func copySplice(dst, src net.Conn) (int64, error) { return 0, errNoDescriptor }

func maxSpliceSize() int { return 1 << 20 }

// pipes stands in for the Linux pool in the tests.
var pipes struct {
	mu   sync.Mutex
	idle []struct{}
}

// pipeIdle matches the Linux constant for the tests.
const pipeIdle = time.Second
