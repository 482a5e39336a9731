package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/proto"
)

func yield() { runtime.Gosched() }

// item is what the peer sent: a message (a chunk on a raw stream), or the
// end of its side (err: io.EOF when it closed).
type item struct {
	data []byte
	at   time.Time
	err  error
}

// wire is the replayed connection's sending half.
type wire interface {
	send(b []byte) error
	closeWrite() // half-close a stream; nothing on datagrams
	stream() bool
}

// netWire is a dialled or accepted connection.
type netWire struct {
	c        net.Conn
	datagram bool
}

func (w *netWire) send(b []byte) error {
	_, err := w.c.Write(b)
	return err
}

func (w *netWire) closeWrite()  { link.CloseWrite(w.c) }
func (w *netWire) stream() bool { return !w.datagram }

// read feeds in with what arrives until the connection ends or done closes.
// A raw stream gives chunks as read; anything else gives messages cut by
// the framing (each datagram split by it).
func (w *netWire) read(cfg *Config, from event.Side, in chan<- item, done <-chan struct{}) {
	put := func(it item) bool {
		select {
		case in <- it:
			return true
		case <-done:
			return false
		}
	}
	fail := func(err error) {
		if errors.Is(err, net.ErrClosed) {
			err = io.EOF
		}
		put(item{err: err, at: time.Now()})
	}
	if w.datagram || proto.IsRaw(cfg.Framer) {
		buf := make([]byte, 64<<10)
		for {
			cfg.flush()
			n, err := w.c.Read(buf)
			if n > 0 {
				at := time.Now()
				msgs := [][]byte{buf[:n]}
				var serr error
				if w.datagram {
					msgs, serr = proto.SplitDatagram(cfg.Framer, buf[:n], cfg.MaxFrame)
				}
				for _, m := range msgs {
					if !put(item{data: append([]byte(nil), m...), at: at}) {
						return
					}
				}
				if serr != nil {
					fail(fmt.Errorf("datagram: %w", serr))
					return
				}
			}
			if err != nil {
				fail(err)
				return
			}
		}
	}
	r := proto.NewReader(flushReader{w.c, cfg}, cfg.Framer, cfg.MaxFrame)
	for {
		msg, err := r.Next()
		if err != nil {
			fail(err)
			return
		}
		if !put(item{data: append([]byte(nil), msg...), at: time.Now()}) {
			return
		}
	}
}

// flushReader flushes the output and the recording before each read.
type flushReader struct {
	c   net.Conn
	cfg *Config
}

func (f flushReader) Read(p []byte) (int, error) {
	f.cfg.flush()
	return f.c.Read(p)
}

// packetWire answers one sender on a shared datagram listener.
type packetWire struct {
	pc net.PacketConn
	to net.Addr
}

func (w *packetWire) send(b []byte) error {
	_, err := w.pc.WriteTo(b, w.to)
	return err
}
func (w *packetWire) closeWrite()  {}
func (w *packetWire) stream() bool { return false }

// player plays one side of one recorded conversation.
type player struct {
	cfg  *Config
	c    *Conv
	feed feed
	n    int // recorded messages taken from feed so far
	me   event.Side
	ev   event.Event // what every event of the replayed connection shares
	// The schedule: a recorded time T is due at anchor + scale(T - base).
	// The anchor moves only when the peer answers later than recorded, so
	// our next message keeps its recorded distance from that answer.
	anchor  time.Time
	base    time.Duration
	started time.Time
	in      <-chan item
	pending []byte // a raw stream's bytes beyond the last expected turn
	eof     error  // how the peer's side ended, once it has
	closed  event.Side
	wbuf    []byte
	ws      *link.WSConn // the connection, when it is a WebSocket: its close frame is replayed
}

// newPlayer plays c, whose messages come from f (nil: c.Msgs).
func newPlayer(c *Conv, f feed, cfg *Config, at time.Time, ev event.Event, conn net.Conn) *player {
	if f == nil {
		f = &sliceFeed{msgs: c.Msgs}
	}
	p := &player{cfg: cfg, c: c, feed: f, me: ev.Role, ev: ev, anchor: at, base: c.Open, started: at}
	p.ws, _ = conn.(*link.WSConn)
	return p
}

func (p *player) other() event.Side { return p.me.Other() }

func (p *player) due(t time.Duration) time.Time { return p.anchor.Add(p.cfg.scale(t - p.base)) }

func (p *player) emit(kind event.Kind, from event.Side, data []byte, err error) {
	p.emitAt(time.Now(), kind, from, data, err)
}

func (p *player) emitAt(at time.Time, kind event.Kind, from event.Side, data []byte, err error) {
	e := p.ev
	e.Kind, e.Time, e.From, e.Data, e.Err = kind, at, from, data, err
	p.cfg.Sink.Emit(&e)
}

// play runs the conversation: our messages on schedule, the peer's awaited
// (and with Check compared), then the close.
func (p *player) play(ctx context.Context, w wire, in <-chan item) (err error) {
	p.in = in
	p.emit(event.Open, 0, nil, nil)
	defer func() {
		if err != nil && !isDifference(err) {
			p.emit(event.Error, 0, nil, err)
		}
		by := p.closed
		if by == 0 {
			by = p.me
		}
		e := p.ev
		e.Kind, e.Time, e.From, e.Err = event.Close, time.Now(), by, err
		if p.ws != nil {
			// The close frame that ended it, and its sender, as recorded.
			if code, reason, byPeer, ok := p.ws.CloseFrame(); ok {
				e.Code, e.Reason, e.From = code, reason, p.me
				if byPeer {
					e.From = p.other()
				}
			}
		}
		p.cfg.Sink.Emit(&e)
		p.cfg.flush()
	}()
	for {
		m, ok, err := p.feed.peek(ctx)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if m.From == p.me {
			p.feed.take()
			p.n++
			if err := p.send(ctx, w, m, p.n); err != nil {
				return err
			}
			continue
		}
		if err := p.expect(ctx, w.stream()); err != nil {
			if errors.Is(err, errGaveUp) {
				break // without --check: the peer went quiet or away; stop here
			}
			return err
		}
	}
	return p.finish(ctx, w)
}

var errGaveUp = errors.New("gave up waiting")

// maxLate is how late a message may go out before the schedule moves.
const maxLate = time.Millisecond

// send sends m, recorded message number k, when it is due: its recorded
// wire bytes when they are known (cfg.Exact), else its payload framed.
func (p *player) send(ctx context.Context, w wire, m *Msg, k int) error {
	due := p.due(m.T)
	if err := sleepUntil(ctx, due, p.cfg); err != nil {
		return err
	}
	// A stall (the machine busy, a slow write) would make the messages
	// after it go out in a burst to catch up: move the schedule instead,
	// so only one gap is off. Small lateness stays on the schedule and
	// never accumulates.
	if late := time.Since(due); p.cfg.Speed > 0 && late > maxLate {
		p.anchor = p.anchor.Add(late)
	}
	b := m.Wire
	if b == nil || !p.cfg.Exact || !w.stream() {
		var err error
		if b, err = proto.Encode(p.cfg.Framer, p.wbuf[:0], m.Data); err != nil {
			return fmt.Errorf("message %d: %w", k, err)
		}
		p.wbuf = b
	}
	if err := w.send(b); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	p.emit(event.Data, p.me, m.Data, nil)
	return nil
}

// next waits for what the peer sends next until deadline (and, when quiet
// is not 0, until quiet passes with nothing arriving). ok is false on a
// timeout; p.eof is set once the peer's side ended.
func (p *player) next(ctx context.Context, deadline time.Time, quiet time.Duration) (it item, ok bool, err error) {
	if p.eof != nil {
		return item{}, false, nil
	}
	wait := time.Until(deadline)
	if quiet > 0 {
		wait = min(wait, quiet)
	}
	if wait <= 0 {
		return item{}, false, nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return item{}, false, ctx.Err()
	case <-timer.C:
		return item{}, false, nil
	case it = <-p.in:
		if it.err != nil {
			p.eof = it.err
			if p.closed == 0 {
				p.closed = p.other()
			}
			return item{}, false, nil
		}
		p.emitAt(it.at, event.Data, p.other(), it.data, nil)
		return it, true, nil
	}
}

// late moves the schedule when the peer's message due at recorded time t
// arrived after it was due.
func (p *player) late(t time.Duration, at time.Time) {
	if due := p.due(t); at.After(due) {
		p.anchor = p.anchor.Add(at.Sub(due))
	}
}

// expect waits for the peer's next recorded message and, with Check,
// compares it. Messages cut by a framing (and datagrams) are compared one
// by one; a raw stream's read boundaries mean nothing, so its turn is
// compared as the bytes of all its messages together.
func (p *player) expect(ctx context.Context, stream bool) error {
	if stream && proto.IsRaw(p.cfg.Framer) {
		return p.expectBytes(ctx)
	}
	m, _, _ := p.feed.peek(ctx)
	p.feed.take()
	p.n++
	it, ok, err := p.next(ctx, time.Now().Add(p.cfg.Timeout), 0)
	if err != nil {
		return err
	}
	if !ok {
		return p.missing(p.n, m, m.Data, nil)
	}
	p.late(m.T, it.at)
	if p.cfg.Check && !bytes.Equal(it.data, m.Data) {
		return p.differ(p.n, m, m.Data, it.data, it.at, "")
	}
	return nil
}

// expectBytes awaits the peer's whole turn on a raw stream: its recorded
// messages up to the next one from our side.
func (p *player) expectBytes(ctx context.Context) error {
	var want []byte
	var turn []Msg
	first := p.n + 1
	for {
		m, ok, err := p.feed.peek(ctx)
		if err != nil {
			return err
		}
		if !ok || m.From == p.me {
			break
		}
		p.feed.take()
		p.n++
		want = append(want, m.Data...)
		turn = append(turn, Msg{T: m.T, From: m.From, Data: m.Data})
	}
	deadline := time.Now().Add(p.cfg.Timeout)
	got := p.pending
	p.pending = nil
	var last time.Time
	for len(got) < len(want) {
		var quiet time.Duration
		if !p.cfg.Check && len(got) > 0 {
			quiet = p.cfg.Quiet // a mock answers a shorter request after a pause
		}
		it, ok, err := p.next(ctx, deadline, quiet)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		got = append(got, it.data...)
		last = it.at
	}
	if len(got) > len(want) {
		p.pending = got[len(want):]
		got = got[:len(want)]
	}
	if !last.IsZero() {
		p.late(turn[len(turn)-1].T, last)
	}
	if p.cfg.Check {
		if off := firstDiff(want, got); off >= 0 {
			k, n := 0, 0 // the message holding the first difference
			for k < len(turn)-1 && n+len(turn[k].Data) <= off {
				n += len(turn[k].Data)
				k++
			}
			if len(got) < len(want) && off == len(got) {
				return p.missing(first+k, &turn[k], want, got)
			}
			if last.IsZero() {
				last = time.Now()
			}
			d := p.differ(first+k, &turn[k], want, got, last, "")
			d.Offset = off
			return d
		}
		return nil
	}
	if len(got) == 0 {
		return p.missing(first, &turn[0], want, nil)
	}
	if len(got) < len(want) {
		p.cfg.Log.Debugf("conn %d: the %s sent %d bytes where %d were recorded; going on", p.ev.Conn, p.other(), len(got), len(want))
	}
	return nil
}

// missing is the peer not sending message k (m): a difference with Check,
// a notice otherwise.
func (p *player) missing(k int, m *Msg, want, got []byte) error {
	why := fmt.Sprintf("nothing more arrived within %v", p.cfg.Timeout)
	if p.eof != nil {
		why = fmt.Sprintf("the %s closed the connection", p.other())
		if p.eof != io.EOF {
			why = fmt.Sprintf("the connection failed: %v", p.eof)
		}
	}
	if p.cfg.Check {
		d := p.differ(k, m, want, got, time.Now(), why)
		d.Offset = len(got)
		return d
	}
	if p.eof != nil {
		p.cfg.Log.Debugf("conn %d: %s before message %d", p.ev.Conn, why, k)
		return errGaveUp
	}
	p.cfg.Log.Warnf("conn %d: message %d from the %s: %s; going on", p.ev.Conn, k, p.other(), why)
	return nil
}

// differ is a Difference at recorded message number k (m).
func (p *player) differ(k int, m *Msg, want, got []byte, at time.Time, problem string) *Difference {
	return &Difference{
		Conn: p.c.ID, Index: k, From: p.other(),
		Recorded: m.T - p.c.Open, Arrived: at.Sub(p.started),
		Expected: want, Got: got, Offset: firstDiff(want, got), Problem: problem,
	}
}

// finish ends the conversation as recorded. A client half-closes once it
// has said everything (a recording made from stdin did so too, though a
// half-close leaves no event); the side that closed first closes first.
// With Check, anything the peer sends after its last recorded message is a
// difference.
func (p *player) finish(ctx context.Context, w wire) error {
	if !w.stream() {
		return nil
	}
	byMe := !p.c.Closed || p.c.CloseBy == p.me || p.c.CloseBy == 0 && p.me == event.Client
	if p.eof == nil && (byMe || p.me == event.Client) {
		if p.ws != nil {
			// A WebSocket has no half-close: the side that closed sends
			// its close frame, with the recorded code and reason; the
			// other waits for the peer's.
			if byMe {
				p.closeWS()
			}
		} else {
			w.closeWrite()
		}
		if p.closed == 0 && (byMe || p.ws == nil) {
			p.closed = p.me
		}
	}
	strict := p.cfg.Check && !byMe
	if strict && len(p.pending) > 0 {
		return p.extra(p.pending, time.Now())
	}
	wait := p.cfg.Timeout
	if byMe {
		wait = min(wait, closeGrace)
	}
	deadline := time.Now().Add(wait)
	for p.eof == nil {
		it, ok, err := p.next(ctx, deadline, 0)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if strict {
			return p.extra(it.data, it.at)
		}
	}
	if strict && p.ws != nil && p.c.CloseCode != 0 {
		return p.checkClose()
	}
	return nil
}

// closeWS sends our close frame: the recorded one when this side sent it,
// else a normal close.
func (p *player) closeWS() {
	code, reason := p.c.CloseCode, p.c.CloseReason
	if p.c.CloseBy != p.me || code == 0 {
		code, reason = 1000, ""
	}
	if err := p.ws.CloseWith(code, reason); err != nil {
		p.cfg.Log.Warnf("conn %d: the recorded %v; sent 1000 instead", p.ev.Conn, err)
	}
}

// checkClose compares the peer's WebSocket close frame with the recorded
// one: a different code is a difference (the reason, free text, is shown
// but not compared).
func (p *player) checkClose() error {
	want := link.CloseText(p.c.CloseCode, p.c.CloseReason)
	code, reason, byPeer, ok := p.ws.CloseFrame()
	var got string
	switch {
	case !ok:
		got = fmt.Sprintf("no close frame (%s)", p.closeWhy())
	case !byPeer:
		got = fmt.Sprintf("no close frame within %v: wirecat closed first", p.cfg.Timeout)
	case code == p.c.CloseCode:
		return nil
	default:
		got = "close code " + link.CloseText(code, reason)
	}
	return &Difference{
		Conn: p.c.ID, Index: p.n + 1, From: p.other(), Recorded: p.c.CloseT - p.c.Open,
		Arrived: time.Since(p.started), Offset: -1, WantClose: want, GotClose: got,
	}
}

// closeWhy says how a WebSocket ended without a close frame.
func (p *player) closeWhy() string {
	switch {
	case p.eof == nil:
		return fmt.Sprintf("nothing within %v", p.cfg.Timeout)
	case p.eof == io.EOF:
		return "the connection closed"
	}
	return p.eof.Error()
}

func (p *player) extra(got []byte, at time.Time) *Difference {
	return &Difference{
		Conn: p.c.ID, Index: p.n + 1, From: p.other(), Recorded: -1,
		Arrived: at.Sub(p.started), Got: got, Offset: 0,
		Problem: fmt.Sprintf("the %s should have closed the connection, but sent more", p.other()),
	}
}
