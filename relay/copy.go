package relay

import (
	"errors"
	"io"
	"net"
	"sync"
)

// copyBufSize is the buffer a plain pair's direction borrows while bytes
// flow: large enough to move a loopback stream at memory speed, and only
// held while there is something to move (see copyIdle).
const copyBufSize = 128 << 10

// copyBufs lends buffers to the directions that are moving bytes now.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyIdle copies src to dst until src ends (nil) or fails, like io.Copy,
// but an idle direction holds nothing: no buffer, and no pipe, where
// io.Copy's splice(2) keeps two pipe descriptors per direction for as long
// as the connection lives (a relay with a thousand idle pairs would hold
// four thousand). Between two stream sockets on Linux it splices through a
// pipe borrowed for each burst (copySplice); elsewhere, where the
// connection gives access to its descriptor, it reads with a pooled buffer
// that goes back to the pool each time src has nothing to read (copyRaw);
// else it falls back to io.CopyBuffer.
func copyIdle(dst, src net.Conn) (int64, error) {
	if n, err := copySplice(dst, src); err != errNoDescriptor {
		return n, err
	}
	if n, err := copyRaw(dst, src); err != errNoDescriptor {
		return n, err
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	// Hide ReadFrom/WriteTo, which would splice or allocate.
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *bp)
}

// errNoDescriptor says copyRaw cannot reach src's descriptor.
var errNoDescriptor = errors.New("no descriptor")
