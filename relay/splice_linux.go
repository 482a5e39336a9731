package relay

import (
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/wirecat-dev/wirecat/link"
)

// The plain path splices on Linux, as io.Copy would, but borrows its pipe
// only while bytes move: io.Copy holds a pipe (two descriptors) per
// direction for the whole life of a pair, idle or not.
const (
	spliceMove     = 0x1 // SPLICE_F_MOVE
	spliceNonblock = 0x2 // SPLICE_F_NONBLOCK
	// maxSplice is a pipe's size and the most one splice moves: Go's own.
	maxSplice = 1 << 20
	// pipeIdle is how long a pipe nobody borrowed stays open for the next
	// burst: long enough to serve a busy relay from a handful of pipes,
	// short enough that descriptors are back a moment after the last
	// client left.
	pipeIdle = time.Second
	// maxIdlePipes bounds the pipes kept open for reuse.
	maxIdlePipes = 32
)

type splicePipe struct {
	r, w  int
	data  int // bytes in the pipe
	since time.Time
}

// pipes lends pipes to the directions moving bytes now.
var pipes struct {
	mu      sync.Mutex
	idle    []*splicePipe // oldest first
	janitor bool
}

func getPipe() (*splicePipe, error) {
	pipes.mu.Lock()
	if n := len(pipes.idle); n > 0 {
		p := pipes.idle[n-1]
		pipes.idle = pipes.idle[:n-1]
		pipes.mu.Unlock()
		return p, nil
	}
	pipes.mu.Unlock()
	var fds [2]int
	var err error
	link.Gated(func() { err = syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK) })
	if err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	// Best effort: a smaller pipe only moves less per call.
	syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[1]), syscall.F_SETPIPE_SZ, maxSplice)
	return &splicePipe{r: fds[0], w: fds[1]}, nil
}

func (p *splicePipe) close() {
	syscall.Close(p.r)
	syscall.Close(p.w)
}

// putPipe keeps an empty pipe for the next burst (closed after pipeIdle
// unused) and closes one that still holds bytes.
func putPipe(p *splicePipe) {
	if p.data > 0 {
		p.close()
		return
	}
	pipes.mu.Lock()
	defer pipes.mu.Unlock()
	if len(pipes.idle) >= maxIdlePipes {
		p.close()
		return
	}
	p.since = time.Now()
	pipes.idle = append(pipes.idle, p)
	if !pipes.janitor {
		pipes.janitor = true
		go closeIdlePipes()
	}
}

// closeIdlePipes closes the pipes unused for pipeIdle, until none is left.
func closeIdlePipes() {
	for {
		time.Sleep(pipeIdle / 2)
		pipes.mu.Lock()
		k := 0
		for k < len(pipes.idle) && time.Since(pipes.idle[k].since) >= pipeIdle {
			pipes.idle[k].close()
			k++
		}
		pipes.idle = append(pipes.idle[:0], pipes.idle[k:]...)
		if len(pipes.idle) == 0 {
			pipes.janitor = false
			pipes.mu.Unlock()
			return
		}
		pipes.mu.Unlock()
	}
}

func splice(from, to, n int) (int, syscall.Errno) {
	for {
		m, _, errno := syscall.Syscall6(syscall.SYS_SPLICE, uintptr(from), 0, uintptr(to), 0, uintptr(n), spliceMove|spliceNonblock)
		if errno != syscall.EINTR {
			return int(m), errno
		}
	}
}

// rawStream returns the RawConn of a TCP or Unix stream socket.
func rawStream(c net.Conn) (syscall.RawConn, bool) {
	var rc syscall.RawConn
	var err error
	switch c := c.(type) {
	case *net.TCPConn:
		rc, err = c.SyscallConn()
	case *net.UnixConn:
		if a, ok := c.LocalAddr().(*net.UnixAddr); ok && a.Net != "unix" {
			return nil, false
		}
		rc, err = c.SyscallConn()
	default:
		return nil, false
	}
	return rc, err == nil
}

// copySplice is copyIdle between two stream sockets on Linux: each burst
// is spliced through a pipe borrowed when src becomes readable and given
// back, empty, as soon as src has nothing more to read. When no pipe can
// be had (the descriptor limit) it goes on in user space (copyRaw).
func copySplice(dst, src net.Conn) (int64, error) {
	sr, ok := rawStream(src)
	if !ok {
		return 0, errNoDescriptor
	}
	dw, ok := rawStream(dst)
	if !ok {
		return 0, errNoDescriptor
	}
	var p *splicePipe
	defer func() {
		if p != nil {
			putPipe(p)
		}
	}()
	var n int64
	for {
		var moved int
		var serr error
		err := sr.Read(func(fd uintptr) bool {
			if p == nil {
				if p, serr = getPipe(); serr != nil {
					return true
				}
			}
			m, errno := splice(int(fd), p.w, maxSplice)
			if errno == syscall.EAGAIN {
				putPipe(p) // empty: nothing was moved into it
				p = nil
				return false // wait for src holding no pipe
			}
			if errno != 0 {
				serr = os.NewSyscallError("splice", errno)
			}
			moved = m
			return true
		})
		if err != nil {
			return n, err // closed
		}
		if serr != nil {
			if p == nil { // no pipe to be had: copy in user space instead
				m, err := copyRaw(dst, src)
				return n + m, err
			}
			return n, serr
		}
		if moved == 0 {
			return n, nil // the peer is done sending
		}
		p.data = moved
		for p.data > 0 {
			var wrote int
			var werr error
			err := dw.Write(func(fd uintptr) bool {
				m, errno := splice(p.r, int(fd), p.data)
				if errno == syscall.EAGAIN {
					return false // wait until dst drains
				}
				if errno != 0 {
					werr = os.NewSyscallError("splice", errno)
				}
				wrote = m
				return true
			})
			if err != nil {
				return n, err
			}
			if werr != nil {
				return n, werr
			}
			p.data -= wrote
			n += int64(wrote)
		}
	}
}

func maxSpliceSize() int { return maxSplice }
