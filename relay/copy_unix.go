//go:build unix

package relay

import (
	"io"
	"net"
	"os"
	"syscall"
)

// copyRaw is copyIdle on a connection with a descriptor: each read runs
// on the non-blocking descriptor inside RawConn.Read, so when nothing is
// there the buffer goes back to the pool before the goroutine waits for
// readability, and is borrowed again when bytes arrive. It returns
// errNoDescriptor at once when src has none.
func copyRaw(dst, src net.Conn) (n int64, err error) {
	sc, isRaw := src.(syscall.Conn)
	if !isRaw {
		return 0, errNoDescriptor
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, errNoDescriptor
	}
	var bp *[]byte
	defer func() {
		if bp != nil {
			copyBufs.Put(bp)
		}
	}()
	for {
		var nr int
		var rerr error
		err := raw.Read(func(fd uintptr) bool {
			if bp == nil {
				bp = copyBufs.Get().(*[]byte)
			}
			for {
				nr, rerr = syscall.Read(int(fd), *bp)
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN {
				copyBufs.Put(bp) // idle: wait holding nothing
				bp = nil
				return false
			}
			return true
		})
		if err != nil {
			return n, err // closed, or a deadline
		}
		if rerr != nil {
			return n, os.NewSyscallError("read", rerr)
		}
		if nr <= 0 {
			return n, nil // the peer is done sending
		}
		nw, werr := dst.Write((*bp)[:nr])
		n += int64(nw)
		if werr != nil {
			return n, werr
		}
		if nw != nr {
			return n, io.ErrShortWrite
		}
	}
}
