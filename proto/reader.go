package proto

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/wirecat-dev/wirecat/units"
)

// DefaultMaxFrame is the largest message accepted when none is configured.
const DefaultMaxFrame = 1 << 20

// readSize is the Reader's starting buffer: large enough that a read moves
// many small messages at once, small enough to cost nothing per connection.
const readSize = 64 << 10

var (
	// ErrTooLarge is wrapped by the error for a message over the size limit.
	ErrTooLarge = errors.New("message larger than --max-frame")
	// ErrTruncated is wrapped by the error for a stream that ends inside a
	// message, for framings where a remainder is not a message.
	ErrTruncated = errors.New("truncated message at end of stream")
)

func tooLarge(max int) error {
	return fmt.Errorf("%w (%s)", ErrTooLarge, units.FormatSize(int64(max)))
}

// Reader cuts the stream of an io.Reader into messages. It keeps one buffer
// that grows only as far as the largest message allows, and hands out
// messages that alias it, so steady-state reading allocates nothing.
type Reader struct {
	r        io.Reader
	f        Framer
	raw      bool
	resume   resumer // nil if f cannot resume a search
	size     sizer   // nil if f cannot tell a message's size early
	max      int     // largest message
	limit    int     // most bytes buffered without a complete message
	bufMax   int     // largest buffer
	buf      []byte
	start    int // first unread byte of buf
	end      int // end of the bytes read into buf
	searched int // bytes of buf[start:end] already searched for a terminator
	err      error
}

// NewReader reads messages framed by f from r. Messages larger than maxFrame
// bytes (DefaultMaxFrame if maxFrame <= 0) are an ErrTooLarge error. A nil f
// is raw: each Read is one message.
func NewReader(r io.Reader, f Framer, maxFrame int) *Reader {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	rd := &Reader{r: r, f: f, raw: IsRaw(f), max: maxFrame}
	rd.resume, _ = f.(resumer)
	rd.size, _ = f.(sizer)
	if b, ok := f.(bounded); ok {
		rd.limit = b.wireLimit(maxFrame)
	} else {
		rd.limit = 2*maxFrame + 64 // room for a custom framer's overhead
	}
	rd.bufMax = max(readSize, rd.limit+1)
	return rd
}

// Release hands the Reader's buffer back for other connections to reuse:
// a server taking thousands of short connections then allocates (and
// zeroes) no 64 KiB buffer per connection. The Reader must not be used after.
func (r *Reader) Release() {
	putBuf(r.buf)
	r.buf = nil
	r.err = io.ErrClosedPipe
}

// bufs holds starting-size read buffers between connections.
var bufs = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

func newBuf(size int) []byte {
	if size == readSize {
		return *bufs.Get().(*[]byte)
	}
	return make([]byte, size)
}

func putBuf(b []byte) {
	if len(b) == readSize {
		bufs.Put(&b)
	}
}

// Buffered returns how many bytes are read but not yet returned as messages.
func (r *Reader) Buffered() int { return r.end - r.start }

// Next returns the next message. The slice is valid until the next call.
// At the end of the stream Next returns io.EOF, or, when bytes remain that do
// not make a message, an ErrTruncated error. Errors are sticky.
func (r *Reader) Next() ([]byte, error) {
	if r.raw {
		return r.nextRaw()
	}
	for {
		msg, err := r.decode()
		if msg != nil || err != nil {
			return msg, err
		}
		if err := r.check(); err != nil {
			return nil, r.fail(err)
		}
		if r.err != nil {
			return r.finish()
		}
		if err := r.fill(); err != nil {
			return nil, r.fail(err)
		}
	}
}

// decode returns the next message of the buffer, or nil when it needs more.
func (r *Reader) decode() ([]byte, error) {
	for r.start < r.end {
		buf := r.buf[r.start:r.end]
		var msg []byte
		var n int
		var err error
		if r.resume != nil {
			msg, n, err = r.resume.decodeFrom(buf, r.searched)
		} else {
			msg, n, err = r.f.Decode(buf)
		}
		switch {
		case err != nil:
			return nil, r.fail(err)
		case n < 0 || n > len(buf):
			return nil, r.fail(fmt.Errorf("%s framer used %d of %d bytes", Name(r.f), n, len(buf)))
		case n == 0:
			r.searched = len(buf)
			return nil, nil
		}
		r.start += n
		r.searched = 0
		if msg == nil {
			continue // filler between frames
		}
		if len(msg) > r.max {
			return nil, r.fail(tooLarge(r.max))
		}
		return msg, nil
	}
	return nil, nil
}

// check refuses an incomplete message that is already too large, or whose
// declared size is, before reading any more of it.
func (r *Reader) check() error {
	if r.end-r.start > r.limit {
		return tooLarge(r.max)
	}
	return checkDeclared(r.size, r.f, r.buf[r.start:r.end], r.max)
}

func checkDeclared(s sizer, f Framer, buf []byte, max int) error {
	if s == nil || len(buf) == 0 {
		return nil
	}
	if d := s.declared(buf); d > int64(max) {
		return fmt.Errorf("%w: %s declares %s", tooLarge(max), Name(f), units.FormatSize(d))
	}
	return nil
}

// fill reads once into the buffer, first moving the unread bytes to its
// front (they are a partial message, so this copies little) and growing it
// if the partial message fills it.
func (r *Reader) fill() error {
	if r.start > 0 {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	if r.end == len(r.buf) {
		if len(r.buf) >= r.bufMax {
			return tooLarge(r.max)
		}
		size := readSize
		if len(r.buf) > 0 {
			size = min(2*len(r.buf), r.bufMax)
		}
		nb := newBuf(size)
		copy(nb, r.buf[:r.end])
		putBuf(r.buf)
		r.buf = nb
	}
	for range 100 {
		n, err := r.r.Read(r.buf[r.end:])
		if n < 0 || n > len(r.buf)-r.end {
			return fmt.Errorf("reader returned a bad count %d", n)
		}
		r.end += n
		if err != nil {
			r.err = err
			return nil
		}
		if n > 0 {
			return nil
		}
	}
	return io.ErrNoProgress
}

// finish ends the stream once the source has failed or ended.
func (r *Reader) finish() ([]byte, error) {
	if r.err != io.EOF || r.start == r.end {
		return nil, r.err
	}
	rest := r.buf[r.start:r.end]
	r.start = r.end
	if fin, ok := r.f.(Finisher); ok {
		msg, err := fin.Finish(rest)
		if err != nil {
			return nil, r.fail(err)
		}
		if len(msg) > r.max {
			return nil, r.fail(tooLarge(r.max))
		}
		return msg, nil
	}
	return nil, r.fail(fmt.Errorf("%w: %d bytes pending", ErrTruncated, len(rest)))
}

// fail makes err sticky.
func (r *Reader) fail(err error) error {
	r.err = err
	r.start, r.end = 0, 0
	return err
}

// nextRaw returns what one Read returned, in the Reader's own buffer.
func (r *Reader) nextRaw() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.buf == nil {
		r.buf = newBuf(min(readSize, r.max))
	}
	for range 100 {
		n, err := r.r.Read(r.buf)
		if err != nil {
			r.err = err
		}
		if n > 0 {
			return r.buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, r.fail(io.ErrNoProgress)
}

// SplitDatagram cuts one datagram into messages: the whole payload with raw
// framing, else whatever f decodes from it. Bytes left over make a message
// for a Finisher and an ErrTruncated error otherwise. Messages may alias
// payload. On error the messages decoded before it are returned with it.
func SplitDatagram(f Framer, payload []byte, maxFrame int) ([][]byte, error) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	if IsRaw(f) {
		if len(payload) > maxFrame {
			return nil, tooLarge(maxFrame)
		}
		return [][]byte{payload}, nil
	}
	var msgs [][]byte
	for len(payload) > 0 {
		msg, n, err := f.Decode(payload)
		switch {
		case err != nil:
			return msgs, err
		case n < 0 || n > len(payload):
			return msgs, fmt.Errorf("%s framer used %d of %d bytes", Name(f), n, len(payload))
		case n == 0:
			s, _ := f.(sizer)
			if err := checkDeclared(s, f, payload, maxFrame); err != nil {
				return msgs, err
			}
			fin, ok := f.(Finisher)
			if !ok {
				return msgs, fmt.Errorf("%w: %d bytes pending", ErrTruncated, len(payload))
			}
			if msg, err = fin.Finish(payload); err != nil {
				return msgs, err
			}
			n = len(payload)
		}
		payload = payload[n:]
		if msg == nil {
			continue
		}
		if len(msg) > maxFrame {
			return msgs, tooLarge(maxFrame)
		}
		msgs = append(msgs, msg)
	}
	return msgs, nil
}
