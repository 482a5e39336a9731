package relay

import (
	"bytes"
	"container/heap"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/proto"
)

// source yields the messages one side sends. A message is valid until the
// next call; io.EOF is the clean end.
type source interface {
	next() ([]byte, error)
}

// sink takes the messages for one side.
type sink interface {
	// encode appends msg as it goes on the wire to dst.
	encode(dst, msg []byte) ([]byte, error)
	// send writes one encoded message (a datagram, or a piece of a stream).
	send(wire []byte) error
	// closeWrite tells the side nothing more is coming, where it can be told.
	closeWrite()
	datagram() bool
}

// wireSource is a source that knows the bytes on the wire of the message
// next returned last: a framed stream.
type wireSource interface {
	source
	// wire returns those bytes, and why they are an unframed chunk rather
	// than a message (nil for a message). Valid until the next call.
	wire() ([]byte, error)
}

// streamSource cuts a stream into messages (chunks as they come when raw).
// A framed one reads losslessly: every byte it reads comes out again, as
// the wire bytes of a message or as an unframed chunk.
type streamSource struct{ r *proto.Reader }

func (s streamSource) next() ([]byte, error) { return s.r.Next() }
func (s streamSource) wire() ([]byte, error) { return s.r.Wire(), s.r.Unframed() }

// flushReader flushes the inspection output before every read, so nothing
// shown waits in a buffer while the relay waits on the network.
type flushReader struct {
	r     io.Reader
	flush func() error
}

func (f flushReader) Read(p []byte) (int, error) {
	if f.flush != nil {
		f.flush()
	}
	return f.r.Read(p)
}

// wsKeep is the largest buffer a WebSocket side keeps between messages.
const wsKeep = 256 << 10

// connDatagrams reads the datagrams of a connected datagram socket (or the
// messages of a WebSocket): each is one message.
type connDatagrams struct {
	c     net.Conn
	buf   []byte
	max   int
	flush func() error
}

func (s *connDatagrams) next() ([]byte, error) {
	if s.flush != nil {
		s.flush()
	}
	if wc, ok := s.c.(*link.WSConn); ok {
		// A WebSocket message whole, in a buffer that grows only as far
		// as the messages do (its limit is --max-frame).
		if cap(s.buf) > wsKeep {
			s.buf = make([]byte, 0, 64<<10)
		}
		msg, err := wc.ReadMessage(s.buf[:0])
		s.buf = msg
		return msg, err
	}
	n, err := s.c.Read(s.buf)
	if err != nil {
		return nil, err
	}
	if n > s.max {
		return nil, fmt.Errorf("datagram of %d bytes: %w", n, proto.ErrTooLarge)
	}
	return s.buf[:n], nil
}

type streamSink struct {
	c net.Conn
	f proto.Framer // nil: raw
}

func (s streamSink) encode(dst, msg []byte) ([]byte, error) {
	if s.f == nil {
		return msg, nil // no copy: the bytes go as they are
	}
	return s.f.Encode(dst, msg)
}
func (s streamSink) send(wire []byte) error { _, err := s.c.Write(wire); return err }
func (s streamSink) closeWrite()            { link.CloseWrite(s.c) }
func (s streamSink) datagram() bool         { return false }

// connDatagramSink sends each message as one datagram on a connected socket.
type connDatagramSink struct{ c net.Conn }

func (s connDatagramSink) encode(_, msg []byte) ([]byte, error) { return msg, nil }
func (s connDatagramSink) send(wire []byte) error {
	if _, ws := s.c.(*link.WSConn); ws {
		_, err := s.c.Write(wire) // a WebSocket message has no size limit of its own
		return err
	}
	return sendDatagrams(wire, func(b []byte) error { _, err := s.c.Write(b); return err })
}
func (connDatagramSink) closeWrite()    {}
func (connDatagramSink) datagram() bool { return true }

// sendDatagrams sends wire as one datagram, or as several when it is over
// the largest UDP payload (raw bytes from a stream have no boundaries).
func sendDatagrams(wire []byte, send func([]byte) error) error {
	for {
		chunk := wire
		if len(chunk) > maxDatagram {
			chunk = chunk[:maxDatagram]
		}
		if err := send(chunk); err != nil {
			return err
		}
		wire = wire[len(chunk):]
		if len(wire) == 0 {
			return nil
		}
	}
}

// flow moves one direction of a pair: read, show, hook, fault, write.
type flow struct {
	p    *pair
	from event.Side // the sending side
	up   bool       // client → server: the Up faults apply
	src  source
	dst  sink
	// q holds delayed messages (nil: messages are written as they come).
	// It starts with the first message a --delay or --rate applies to, and
	// stays: a message never overtakes one queued before it.
	q        *queue
	writeErr chan error // the queue writer's end
	sent     atomic.Int64
	rsent    atomic.Int64  // bytes counted for --reset SIZE
	count    *atomic.Int64 // bytes written, for the closing report
	wire     []byte
	scratch  []byte     // a corrupted copy of a message
	next     time.Time  // --rate: when the next byte may go
	ws       wireSource // nil: the source's messages are their wire bytes
	noted    bool       // an unframed chunk was reported
}

// faults are the direction's faults now: they may change while the relay
// runs (--control, a schedule), and every message reads them afresh.
func (fl *flow) faults() *DirFaults {
	f := fl.p.r.faults.Load()
	if fl.up {
		return &f.Up
	}
	return &f.Down
}

func newFlow(p *pair, from, to *side, count *atomic.Int64) *flow {
	cfg := &p.r.cfg
	fl := &flow{p: p, from: from.from, up: from.from == event.Client, count: count}
	fl.src = from.src
	if fl.src == nil {
		if from.stream {
			r := proto.NewReader(flushReader{from.conn, cfg.Flush}, cfg.Framer, cfg.MaxFrame)
			if cfg.Framer != nil {
				r.Lossless()
			}
			fl.src = streamSource{r}
		} else {
			size := max(cfg.MaxFrame, maxDatagram) + 1
			if _, ws := from.conn.(*link.WSConn); ws {
				size = 64 << 10 // grown by ReadMessage as needed
			}
			fl.src = &connDatagrams{c: from.conn, buf: make([]byte, size), max: cfg.MaxFrame, flush: cfg.Flush}
		}
	}
	switch {
	case to.sink != nil:
		fl.dst = to.sink
	case to.stream:
		fl.dst = streamSink{c: to.conn, f: cfg.Framer}
	default:
		fl.dst = connDatagramSink{c: to.conn}
	}
	if ws, ok := fl.src.(wireSource); ok && cfg.Framer != nil {
		fl.ws = ws
	}
	return fl
}

// startQueue makes the queue and its writer.
func (fl *flow) startQueue() {
	fl.q = newQueue(!fl.dst.datagram())
	fl.writeErr = make(chan error, 1)
	go func() { fl.writeErr <- fl.drain() }()
}

// run relays until the sender is done (nil, after everything went out and
// the receiver was half-closed) or something fails.
func (fl *flow) run() error {
	if fl.faults().queued() {
		fl.startQueue()
	}
	p := fl.p
	for {
		msg, err := fl.src.next()
		if err != nil {
			if err != io.EOF {
				if fl.q != nil {
					fl.q.kill()
				}
				return err
			}
			if fl.q == nil {
				if !fl.faults().Blackhole {
					fl.dst.closeWrite()
				}
				return nil
			}
			fl.q.close()
			return <-fl.writeErr
		}
		if p.timed {
			p.touch()
		}
		if err := fl.relay(msg); err != nil {
			p.end(fl.from.Other(), err) // the receiver failed
			return err
		}
	}
}

// relay shows one message and passes it on. A message no hook changed goes
// out as the exact bytes it came in (a CRLF stays a CRLF under --frame
// line, a last line keeps its lack of a newline); a changed one is encoded
// with the framing. An unframed chunk (bytes that made no frame) is shown
// and passed on as it came, without hooks: it is not a message.
func (fl *flow) relay(msg []byte) error {
	p := fl.p
	var wire []byte
	var unframed error
	if fl.ws != nil {
		wire, unframed = fl.ws.wire()
	}
	fl.show(msg, wire, unframed)
	// A datagram carries a message without framing: the message goes.
	asWire := wire != nil && !fl.dst.datagram()
	if unframed != nil {
		return fl.pass(wire, true)
	}
	if p.hooks != nil {
		out := p.hooks.message(fl.from, msg)
		if len(out) == 1 && asWire && bytes.Equal(out[0], msg) {
			return fl.pass(wire, true) // unchanged
		}
		for _, m := range out {
			if err := fl.pass(m, false); err != nil {
				return err
			}
		}
		return nil
	}
	if asWire {
		return fl.pass(wire, true)
	}
	return fl.pass(msg, false)
}

// show emits a message (and its wire bytes) to the view and the recording;
// the first unframed chunk of the direction is also noted on stderr.
func (fl *flow) show(msg, wire []byte, unframed error) {
	p := fl.p
	if unframed != nil && !fl.noted {
		fl.noted = true
		p.r.cfg.Log.Notef("conn %d: bytes from the %s that make no %s frame are passed on as they came (%v)",
			p.id, fl.from, proto.Name(p.r.cfg.Framer), unframed)
	}
	p.emitWire(event.Data, fl.from, msg, wire, nil, unframed)
}

// pass applies --blackhole, --drop, --reset P and --corrupt, and hands a
// message (or, when wire is true, bytes ready for the wire) on, now or
// after its delay.
func (fl *flow) pass(msg []byte, wire bool) error {
	f := fl.faults()
	if f.Blackhole || f.Drop > 0 && rand.Float64() < f.Drop {
		return nil
	}
	if f.Reset > 0 && rand.Float64() < f.Reset {
		fl.p.reset(fmt.Errorf("reset on a message (--reset %s%%)", strconv.FormatFloat(f.Reset*100, 'g', -1, 64)))
		return errStopped
	}
	if f.Corrupt > 0 && len(msg) > 0 && rand.Float64() < f.Corrupt {
		fl.scratch = append(fl.scratch[:0], msg...)
		msg = fl.scratch
		msg[rand.IntN(len(msg))] ^= 1 << rand.IntN(8)
	}
	if fl.q == nil && f.queued() {
		fl.startQueue()
	}
	if fl.q == nil {
		return fl.deliver(msg, wire)
	}
	due := time.Now()
	if d := f.Delay; d > 0 {
		if j := f.Jitter; j > 0 {
			d += time.Duration(rand.Int64N(int64(2*j)+1)) - j
		}
		due = due.Add(d)
	}
	if !fl.q.push(append([]byte{}, msg...), wire, due) {
		return errStopped // the pair is going away
	}
	return nil
}

// drain writes queued messages as they fall due, then half-closes.
func (fl *flow) drain() error {
	for {
		it, ok := fl.q.pop(fl.p.done)
		if !ok {
			return errStopped
		}
		if it == nil {
			if !fl.faults().Blackhole {
				fl.dst.closeWrite()
			}
			return nil
		}
		if err := fl.deliver(it.msg, it.wire); err != nil {
			fl.q.kill()
			fl.p.end(fl.from.Other(), err) // the receiver failed
			return err
		}
	}
}

// deliver encodes msg (unless it is wire bytes already) and writes it,
// honouring --rate, --cut-after and --reset SIZE.
func (fl *flow) deliver(msg []byte, isWire bool) error {
	if !fl.p.r.waitHeld(fl.p.done) { // a stall (--hold): the bytes wait
		return errStopped
	}
	wire := msg
	if !isWire {
		var err error
		if wire, err = fl.dst.encode(fl.wire[:0], msg); err != nil {
			return err
		}
		if fl.p.r.cfg.Framer != nil {
			fl.wire = wire[:0]
		}
	}
	f, all := fl.faults(), fl.p.r.faults.Load()
	n := len(wire)
	allowed := min(reserve(&fl.sent, f.CutBytes, n), reserve(&fl.p.sent, all.CutBytes, n), reserve(&fl.rsent, f.ResetBytes, n))
	cut := f.CutBytes > 0 && fl.sent.Load() >= f.CutBytes ||
		all.CutBytes > 0 && fl.p.sent.Load() >= all.CutBytes
	reset := f.ResetBytes > 0 && fl.rsent.Load() >= f.ResetBytes
	switch {
	case allowed == n:
	case fl.dst.datagram():
		wire = nil // there is no such thing as part of a datagram
	default:
		wire = wire[:allowed]
	}
	if wire != nil {
		if err := fl.write(wire, f); err != nil {
			return err
		}
		fl.count.Add(int64(len(wire)))
	}
	if reset {
		fl.p.reset(fmt.Errorf("reset after %d bytes %s (--reset)", f.ResetBytes, fl.dirName()))
		return errStopped
	}
	if cut {
		limit := all.CutBytes
		if f.CutBytes > 0 && fl.sent.Load() >= f.CutBytes {
			limit = f.CutBytes
		}
		fl.p.end(event.Relay, &cutError{limit})
		return errStopped
	}
	return nil
}

// dirName says which way the flow goes.
func (fl *flow) dirName() string {
	if fl.up {
		return "client→server"
	}
	return "server→client"
}

// write sends wire, paced by --rate: a stream in pieces of 20 ms worth, a
// datagram whole.
func (fl *flow) write(wire []byte, f *DirFaults) error {
	if f.Rate <= 0 {
		if len(wire) == 0 && !fl.dst.datagram() {
			return nil // an empty datagram is a message; empty stream bytes are nothing
		}
		return fl.send(wire, f)
	}
	piece := len(wire)
	if !fl.dst.datagram() {
		piece = int(min(max(f.Rate/50, 1), 64<<10)) // 20 ms worth
	}
	for first := true; first || len(wire) > 0; first = false {
		chunk := wire[:min(piece, len(wire))]
		now := time.Now()
		if fl.next.After(now) {
			t := time.NewTimer(fl.next.Sub(now))
			select {
			case <-t.C:
			case <-fl.p.done:
				t.Stop()
				return errStopped
			}
		} else {
			fl.next = now
		}
		if err := fl.send(chunk, f); err != nil {
			return err
		}
		fl.next = fl.next.Add(time.Duration(float64(len(chunk)) / f.Rate * float64(time.Second)))
		wire = wire[len(chunk):]
	}
	return nil
}

// send writes one piece of the wire; --slice cuts a stream's into smaller
// writes of random sizes, SlicePause apart (a datagram is never cut).
func (fl *flow) send(wire []byte, f *DirFaults) error {
	if f.SliceMax <= 0 || fl.dst.datagram() {
		return fl.dst.send(wire)
	}
	for first := true; len(wire) > 0; first = false {
		if !first && f.SlicePause > 0 {
			t := time.NewTimer(f.SlicePause)
			select {
			case <-t.C:
			case <-fl.p.done:
				t.Stop()
				return errStopped
			}
		}
		n := f.SliceMin
		if f.SliceMax > f.SliceMin {
			n += rand.IntN(f.SliceMax - f.SliceMin + 1)
		}
		n = min(n, len(wire))
		if err := fl.dst.send(wire[:n]); err != nil {
			return err
		}
		wire = wire[n:]
	}
	return nil
}

// reserve counts n more bytes against limit and returns how many of them
// may go (all when there is no limit).
func reserve(counter *atomic.Int64, limit int64, n int) int {
	if limit <= 0 {
		return n
	}
	after := counter.Add(int64(n))
	if after <= limit {
		return n
	}
	over := after - limit
	if over >= int64(n) {
		return 0
	}
	return n - int(over)
}

type cutError struct{ n int64 }

func (e *cutError) Error() string {
	return "cut after " + strconv.FormatInt(e.n, 10) + " bytes (--cut-after)"
}

// queue holds one direction's delayed messages in due order. For a stream
// a message is never due before the one ahead of it, so order is kept as
// TCP keeps it; datagrams with jitter may overtake each other, as they do.
type queue struct {
	mu      sync.Mutex
	space   *sync.Cond
	items   itemHeap
	bytes   int
	seq     uint64
	lastDue time.Time
	ordered bool
	closed  bool // no more messages: the sender is done
	dead    bool // the pair is going away
	wake    chan struct{}
}

func newQueue(ordered bool) *queue {
	q := &queue{ordered: ordered, wake: make(chan struct{}, 1)}
	q.space = sync.NewCond(&q.mu)
	return q
}

func (q *queue) notify() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// push adds msg (wire: bytes ready for the wire), waiting while the queue
// is full; false when the pair died.
func (q *queue) push(msg []byte, wire bool, due time.Time) bool {
	q.mu.Lock()
	for q.bytes >= maxQueue && !q.dead {
		q.space.Wait()
	}
	if q.dead {
		q.mu.Unlock()
		return false
	}
	if q.ordered && due.Before(q.lastDue) {
		due = q.lastDue
	}
	q.lastDue = due
	q.seq++
	heap.Push(&q.items, &item{msg: msg, wire: wire, due: due, seq: q.seq})
	q.bytes += len(msg)
	q.mu.Unlock()
	q.notify()
	return true
}

// close says no more messages will come.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.notify()
}

// kill drops everything and wakes whoever waits.
func (q *queue) kill() {
	q.mu.Lock()
	q.dead = true
	q.items = nil
	q.space.Broadcast()
	q.mu.Unlock()
	q.notify()
}

// pop waits for the next due message: nil at the end of a closed queue,
// false when the pair is going away.
func (q *queue) pop(done <-chan struct{}) (*item, bool) {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		q.mu.Lock()
		if q.dead {
			q.mu.Unlock()
			return nil, false
		}
		var wait <-chan time.Time
		if len(q.items) > 0 {
			top := q.items[0]
			d := time.Until(top.due)
			if d <= 0 {
				heap.Pop(&q.items)
				q.bytes -= len(top.msg)
				q.space.Signal()
				q.mu.Unlock()
				return top, true
			}
			if t == nil {
				t = time.NewTimer(d)
			} else {
				t.Reset(d)
			}
			wait = t.C
		} else if q.closed {
			q.mu.Unlock()
			return nil, true
		}
		q.mu.Unlock()
		select {
		case <-done:
			q.kill()
			return nil, false
		case <-q.wake:
		case <-wait:
		}
	}
}

type item struct {
	msg  []byte
	wire bool // msg is wire bytes, not a message to encode
	due  time.Time
	seq  uint64
}

type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)   { *h = append(*h, x.(*item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
