package proto

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

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
	held     *int64 // bytes of buf counted against the buffer budget (apart, for the cleanup)

	// Lossless mode (see Lossless).
	lossless bool
	into     copyDecoder // non-nil for framers that would rewrite buf
	wsize    wireSizer   // nil if f cannot tell a frame's wire length early
	pos      int         // where decoding goes on; buf[start:pos] is filler already used
	scratch  []byte      // decodeInto's output
	wire     []byte      // the wire bytes of the message Next returned last
	unframed error       // why the last chunk is not a message; nil for a message
	skipping bool        // inside a frame over the limit: pass bytes on until its terminator
	passLeft int64       // bytes of a frame over the limit, of known length, still to pass on
	passWhy  error       // why passLeft bytes are passed on; nil: the frame is over the limit
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
	rd.held = new(int64)
	// A Reader dropped without Release gives its share of the budget back
	// when it is collected.
	runtime.AddCleanup(rd, func(held *int64) {
		if *held > 0 {
			unaccount(*held)
		}
	}, rd.held)
	return rd
}

// Release hands the Reader's buffer back for other connections to reuse:
// a server taking thousands of short connections then allocates (and
// zeroes) no 64 KiB buffer per connection. A grown buffer is left to the
// garbage collector and leaves the budget at once. The Reader must not be
// used after.
func (r *Reader) Release() {
	r.putBuf(r.buf)
	r.buf = nil
	r.err = io.ErrClosedPipe
}

// bufs holds starting-size read buffers between connections.
var bufs = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

// DefaultBufferBudget bounds the bytes that all Readers together hold in
// buffers grown past the starting size, that is in partial messages
// larger than 64 KiB: a thousand clients that each start a 1 MiB line and
// never finish it would otherwise hold over a GiB. 256 MiB lets a few
// hundred connections carry messages of the default --max-frame at once.
const DefaultBufferBudget = 256 << 20

var (
	// ErrBudget is wrapped by the error of a Reader refused a larger buffer
	// because the partial messages of all connections hold the budget.
	ErrBudget = errors.New("partial messages of all connections fill the buffer budget")

	bufferBudget atomic.Int64 // 0: DefaultBufferBudget
	buffered     atomic.Int64 // bytes in grown buffers now, all Readers
	bufferedHigh atomic.Int64 // the high-water mark since memory was last given back
	giveBack     atomic.Bool  // a return of memory to the system is scheduled
)

// SetBufferBudget sets the budget for grown buffers across all Readers
// (bytes; 0 or less restores DefaultBufferBudget).
func SetBufferBudget(n int64) { bufferBudget.Store(max(n, 0)) }

func budget() int64 {
	if b := bufferBudget.Load(); b > 0 {
		return b
	}
	return DefaultBufferBudget
}

// BufferedTotal returns the bytes all Readers hold in grown buffers now.
func BufferedTotal() int64 { return buffered.Load() }

// giveBackAbove is the high-water mark of grown buffers past which, once
// most of them are gone, the memory is returned to the system at once:
// the runtime would otherwise keep a freed GiB resident for minutes.
const giveBackAbove = 64 << 20

// account moves the bytes a Reader counts against the budget to size
// (0 for a starting-size buffer), refusing growth beyond the budget.
func (r *Reader) account(size int) error {
	if size <= readSize {
		size = 0
	}
	delta := int64(size) - *r.held
	if delta > 0 {
		if n := buffered.Add(delta); n > budget() {
			buffered.Add(-delta)
			return fmt.Errorf("%w (%s): this connection gets no more", ErrBudget, units.FormatSize(budget()))
		} else if n > bufferedHigh.Load() {
			bufferedHigh.Store(n) // racy max: a mark, not a bound
		}
	} else if delta < 0 {
		unaccount(-delta)
	}
	*r.held = int64(size)
	return nil
}

// unaccount takes n bytes off the budget and, once most of a large
// high-water mark is gone, returns the freed memory to the system.
func unaccount(n int64) {
	now := buffered.Add(-n)
	high := bufferedHigh.Load()
	if high < giveBackAbove || now > high/4 || !giveBack.CompareAndSwap(false, true) {
		return
	}
	// A moment later, so a crowd of connections closing together is
	// collected once, not once each.
	time.AfterFunc(500*time.Millisecond, func() {
		bufferedHigh.Store(buffered.Load())
		debug.FreeOSMemory()
		giveBack.Store(false)
	})
}

func (r *Reader) newBuf(size int) ([]byte, error) {
	if err := r.account(size); err != nil {
		return nil, err
	}
	if size == readSize {
		return *bufs.Get().(*[]byte), nil
	}
	return make([]byte, size), nil
}

func (r *Reader) putBuf(b []byte) {
	if len(b) == readSize {
		bufs.Put(&b)
	}
	if *r.held > 0 && len(b) > readSize {
		unaccount(*r.held)
		*r.held = 0
	}
}

// Lossless makes the Reader account for every byte it reads, as a relay
// needs: Wire returns the exact bytes each message came from, and bytes that
// make no message come out as unframed chunks instead of ending the stream:
// a malformed frame (a bad SLIP escape or COBS block) as the frame's bytes,
// a frame over the size limit as pieces of at most the limit (the Reader
// then resyncs at the next terminator, or right after a length-prefixed
// frame), and at the end of the stream an unterminated tail that is no
// message. Unframed says why a chunk is not a message. Call it before the
// first Next.
func (r *Reader) Lossless() {
	r.lossless = true
	r.into, _ = r.f.(copyDecoder)
	r.wsize, _ = r.f.(wireSizer)
}

// Wire returns the bytes on the wire of what the last Next returned: the
// message with its framing (delimiter, CR, prefix, escapes, empty frames
// before it) or an unframed chunk. Only Lossless and raw Readers keep it;
// it is valid until the next call.
func (r *Reader) Wire() []byte { return r.wire }

// Unframed returns why what the last Next returned is an unframed chunk of
// wire bytes rather than a message (it wraps ErrTooLarge, ErrTruncated or
// the framer's error), or nil for a message. Only in Lossless mode.
func (r *Reader) Unframed() error { return r.unframed }

// Buffered returns how many bytes are read but not yet returned as messages.
func (r *Reader) Buffered() int { return r.end - r.start }

// Next returns the next message. The slice is valid until the next call.
// At the end of the stream Next returns io.EOF, or, when bytes remain that do
// not make a message, an ErrTruncated error. Errors are sticky.
func (r *Reader) Next() ([]byte, error) {
	if r.raw {
		return r.nextRaw()
	}
	if r.lossless {
		return r.nextLossless()
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
	if len(r.buf) > readSize && r.end < readSize {
		r.shrink()
	}
	if r.end == len(r.buf) {
		if len(r.buf) >= r.bufMax {
			return tooLarge(r.max)
		}
		size := readSize
		if len(r.buf) > 0 {
			size = min(2*len(r.buf), r.bufMax)
		}
		old := r.buf
		nb, err := r.newBuf(size) // the old buffer's share moves to it
		if err != nil {
			return err
		}
		copy(nb, old[:r.end])
		if len(old) == readSize {
			bufs.Put(&old)
		}
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

// shrink goes back to a starting-size buffer once what is unread fits in
// one: a large message has passed, and a connection that now waits (maybe
// for hours) must not keep its grown buffer and its share of the budget.
// A grown scratch buffer (SLIP and COBS decode into it) goes too. The next
// large message grows them again, which costs a copy of it.
func (r *Reader) shrink() {
	nb := *bufs.Get().(*[]byte)
	r.end = copy(nb, r.buf[:r.end])
	r.buf = nb
	r.account(0) // giving back never fails
	if cap(r.scratch) > readSize {
		r.scratch = nil
	}
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
		if r.buf, r.err = r.newBuf(min(readSize, r.max)); r.err != nil {
			return nil, r.err
		}
	}
	for range 100 {
		n, err := r.r.Read(r.buf)
		if err != nil {
			r.err = err
		}
		if n > 0 {
			r.wire = r.buf[:n]
			return r.wire, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, r.fail(io.ErrNoProgress)
}

// tailKeep is how many bytes of a frame over the limit a Lossless Reader
// holds back while it passes the frame on, so a terminator split across
// reads is still found.
const tailKeep = 64

// nextLossless is Next in Lossless mode.
func (r *Reader) nextLossless() ([]byte, error) {
	r.wire, r.unframed = nil, nil
	for {
		msg, ok, err := r.decodeLossless()
		if ok || err != nil {
			return msg, err
		}
		if r.err != nil {
			return r.finishLossless()
		}
		if msg, ok := r.overLimit(); ok {
			return msg, nil
		}
		off := r.pos - r.start
		err = r.fill()
		r.pos = r.start + off
		if err != nil {
			if errors.Is(err, ErrBudget) && r.end > r.start {
				// No room to buffer more of this frame: pass on what is
				// buffered, as a frame over the limit would be, and the
				// rest of it after (its length known) or up to the next
				// terminator.
				left := int64(-1)
				if r.wsize != nil {
					if w := r.wsize.wireSize(r.buf[r.pos:r.end]); w > 0 {
						left = max(0, w-int64(r.end-r.pos))
					}
				}
				msg := r.chunk(r.end, err)
				if left >= 0 {
					r.passLeft, r.passWhy = left, err
				} else {
					r.skipping = r.resume != nil || r.into != nil
				}
				return msg, nil
			}
			return nil, r.fail(err)
		}
	}
}

// decodeLossless returns the next message or chunk of the buffer; ok is
// false when more bytes are needed.
func (r *Reader) decodeLossless() (msg []byte, ok bool, err error) {
	for r.pos < r.end {
		buf := r.buf[r.pos:r.end]
		if r.passLeft > 0 {
			n := int(min(int64(len(buf)), r.passLeft))
			r.passLeft -= int64(n)
			why := r.passWhy
			if why == nil {
				why = tooLarge(r.max)
			}
			if r.passLeft == 0 {
				r.passWhy = nil
			}
			return r.chunk(r.pos+n, why), true, nil
		}
		var n int
		var derr error
		switch {
		case r.into != nil:
			msg, n, derr = r.into.decodeInto(&r.scratch, buf, r.searched)
		case r.resume != nil:
			msg, n, derr = r.resume.decodeFrom(buf, r.searched)
		default:
			msg, n, derr = r.f.Decode(buf)
		}
		switch {
		case derr != nil:
			// A malformed frame goes on as it came; without its extent,
			// everything buffered does.
			if n <= 0 || n > len(buf) {
				n = len(buf)
			}
			r.skipping = false
			return r.chunk(r.pos+n, derr), true, nil
		case n < 0 || n > len(buf):
			return nil, false, r.fail(fmt.Errorf("%s framer used %d of %d bytes", Name(r.f), n, len(buf)))
		case n == 0:
			r.searched = len(buf)
			return nil, false, nil
		}
		r.pos += n
		r.searched = 0
		if r.skipping {
			// The terminator of a frame over the limit: its last piece.
			r.skipping = false
			return r.chunk(r.pos, tooLarge(r.max)), true, nil
		}
		if msg == nil {
			continue // filler: it goes out with the next message
		}
		if len(msg) > r.max {
			return r.chunk(r.pos, tooLarge(r.max)), true, nil
		}
		r.wire = r.buf[r.start:r.pos]
		r.start = r.pos
		return msg, true, nil
	}
	return nil, false, nil
}

// chunk returns buf[start:end] as an unframed chunk, for reason.
func (r *Reader) chunk(end int, reason error) []byte {
	r.wire = r.buf[r.start:end]
	r.unframed = reason
	r.start, r.pos, r.searched = end, end, 0
	return r.wire
}

// overLimit passes on the buffered part of a frame that is over the limit
// (or declares it will be), so a Lossless Reader never holds more than the
// limit of one frame.
func (r *Reader) overLimit() ([]byte, bool) {
	buffered := r.end - r.start
	if buffered == 0 {
		return nil, false
	}
	over := buffered > r.limit || r.skipping && buffered >= readSize
	if !over && checkDeclared(r.size, r.f, r.buf[r.pos:r.end], r.max) == nil {
		return nil, false
	}
	if r.wsize != nil {
		if w := r.wsize.wireSize(r.buf[r.pos:r.end]); w > 0 {
			// The frame's length is known: pass exactly it, then resync.
			r.passLeft = w + int64(r.pos-r.start)
			r.pos = r.start
			msg, _, _ := r.decodeLossless()
			return msg, true
		}
	}
	// A framer that searches for a terminator resyncs at the next one: hold
	// back a few bytes in case a terminator starts there. Any other framer
	// starts afresh after the chunk.
	resync := r.resume != nil || r.into != nil
	keep := 0
	if resync {
		keep = min(tailKeep, r.end-r.pos)
	}
	if buffered-keep <= 0 {
		return nil, false
	}
	msg := r.chunk(r.end-keep, tooLarge(r.max))
	r.skipping = resync
	return msg, true
}

// finishLossless ends the stream in Lossless mode: what is left is the
// last message (a line without its newline) or an unframed chunk.
func (r *Reader) finishLossless() ([]byte, error) {
	if r.err != io.EOF || r.start == r.end {
		return nil, r.err
	}
	if fin, ok := r.f.(Finisher); ok && !r.skipping && r.passLeft == 0 && r.pos < r.end {
		if msg, err := fin.Finish(r.buf[r.pos:r.end]); err == nil && len(msg) <= r.max {
			r.wire = r.buf[r.start:r.end]
			r.start, r.pos = r.end, r.end
			return msg, nil
		}
	}
	reason := fmt.Errorf("%w: %d bytes pending", ErrTruncated, r.end-r.pos)
	if r.skipping {
		reason = tooLarge(r.max)
	}
	return r.chunk(r.end, reason), nil
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
