package pipe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wirecat-dev/wirecat/diag"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/proto"
)

// Config says how a connection is served.
type Config struct {
	Framer   proto.Framer
	MaxFrame int
	Sink     event.Sink
	Flush    func() error  // flushes the output; called before blocking on the network
	Idle     time.Duration // end a connection silent for this long (0: never)
	// Linger is how long to keep going once one side is done: on a datagram
	// connection, how long to wait for replies after the input ends; on a
	// stream, how long to keep sending after the peer closed while the input
	// still flows.
	Linger   time.Duration
	SendOnly bool // ignore what arrives
	// Permit, when set, says whether a datagram listener hears a sender
	// (--allow/--deny); the others' datagrams are dropped.
	Permit func(net.Addr) bool
	// MaxPeers, when set, is how many senders a datagram listener hears;
	// datagrams from more are dropped (listen -u -k --max-conns).
	MaxPeers int
	Log      *diag.Log
	// execPerSender is set by NewPacketExec: each sender holds one of a
	// bounded number of processes, so silent senders must be forgotten.
	execPerSender bool
}

// flush writes out the output and the recording, if there is anything to flush.
func (cfg *Config) flush() {
	if cfg.Flush != nil {
		cfg.Flush()
	}
}

// ErrIdle ends a connection that was silent for --idle.
var ErrIdle = errors.New("idle timeout")

// Serve wires connection c to src (nil: receive only) and reports every
// message to cfg.Sink, until the peer is done, ctx ends or --idle passes.
// It closes c.
func Serve(ctx context.Context, c net.Conn, m Meta, cfg *Config, src Source) error {
	defer c.Close()
	start := time.Now()
	cfg.Sink.Emit(m.event(event.Open, 0, nil, nil))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { c.Close() }) // unblocks reads and writes
	defer stop()

	t := &traffic{}
	t.touch()
	if cfg.Idle > 0 {
		go t.watchIdle(ctx, cfg.Idle, cancel)
	}
	datagram := !isStream(c)
	if datagram {
		growReadBuffer(c)
	}
	var sent atomic.Bool // the input is done
	sendErr := make(chan error, 1)
	var inputErr error // set before cancel, read once ctx is done
	if src != nil {
		go func() {
			err := pump(c, src, m, cfg, t, datagram)
			sent.Store(true)
			if err == nil && datagram && cfg.Linger > 0 {
				c.SetReadDeadline(time.Now().Add(cfg.Linger))
			}
			if err != nil && !isGone(err) {
				// The input failed (a bad hex line, a read error): the
				// connection ends with that error rather than waiting on a
				// peer that may never close.
				inputErr = err
				cancel(err)
			}
			sendErr <- err
		}()
	}

	rerr := receive(c, m, cfg, t, func([]byte) {
		if sent.Load() && datagram && cfg.Linger > 0 {
			c.SetReadDeadline(time.Now().Add(cfg.Linger))
		}
	})
	var err error
	by := m.Role.Other()
	switch {
	case ctx.Err() != nil:
		by, err = m.Role, inputErr // idle or interrupted: our choice, not a failure
		cfg.Log.Debugf("conn %d: %v", m.ID, context.Cause(ctx))
	case rerr == nil && src != nil && !idle(src):
		// The peer is done sending; let what we still have to say go out.
		err = t.drain(sendErr, cfg.Linger)
	case isTimeout(rerr) && sent.Load():
		by, err = m.Role, nil // a datagram peer that stopped answering
	case errors.Is(rerr, link.ErrIdle):
		by, err = m.Role, nil // a DTLS association silent for --idle (link says so with -v)
	default:
		err = rerr
	}
	if err != nil {
		cfg.Sink.Emit(m.event(event.Error, 0, nil, err))
	}
	cfg.Sink.Emit(m.closeEvent(c, by, err))
	cfg.flush()
	cfg.Log.Debugf("conn %d %s closed after %v: %d bytes in, %d bytes out",
		m.ID, m.Remote, time.Since(start).Round(time.Millisecond), t.in.Load(), t.out.Load())
	return err
}

// closeEvent is the close of c, closed first by side by; a WebSocket's
// carries the close frame that ended it, and its sender as the closer.
func (m *Meta) closeEvent(c net.Conn, by event.Side, err error) *event.Event {
	e := m.event(event.Close, by, nil, err)
	CloseFrame(e, c)
	return e
}

// CloseFrame sets a close event's Code and Reason from the WebSocket close
// frame that ended c, and From to the side that sent it (the event's Role
// when wirecat did, else the other). Other connections leave e as it is.
func CloseFrame(e *event.Event, c net.Conn) {
	wc, ok := c.(*link.WSConn)
	if !ok {
		return
	}
	code, reason, byPeer, ok := wc.CloseFrame()
	if !ok {
		return
	}
	e.Code, e.Reason, e.From = code, reason, e.Role
	if byPeer {
		e.From = e.Role.Other()
	}
}

// receive reads messages until the peer closes (nil) or something fails.
func receive(c net.Conn, m Meta, cfg *Config, t *traffic, onMessage func(msg []byte)) error {
	ev := m.event(event.Data, m.Role.Other(), nil, nil) // reused: one allocation per connection
	emit := func(msg []byte, at time.Time) {
		t.in.Add(int64(len(msg)))
		if !cfg.SendOnly {
			ev.Time, ev.Data = at, msg
			cfg.Sink.Emit(ev)
		}
		onMessage(msg)
	}
	if wc, ok := c.(*link.WSConn); ok {
		return receiveMessages(wc, m, cfg, t, emit)
	}
	if !isStream(c) {
		buf := make([]byte, 64<<10)
		for {
			n, _, err := readDatagram(c, buf, cfg.Flush)
			if err == io.EOF {
				return nil // a DTLS peer's close_notify (UDP has no end)
			}
			if err != nil {
				return err
			}
			at := time.Now()
			t.last.Store(at.UnixNano())
			msgs, err := proto.SplitDatagram(cfg.Framer, buf[:n], cfg.MaxFrame)
			for _, msg := range msgs {
				emit(msg, at)
			}
			if err != nil {
				return fmt.Errorf("datagram from %s: %w", m.Remote, err)
			}
		}
	}
	cr := &chunkReader{r: c, flush: cfg.Flush, t: t}
	r := proto.NewReader(cr, cfg.Framer, cfg.MaxFrame)
	defer r.Release()
	for {
		msg, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		emit(msg, cr.at)
	}
}

// wsKeep is the largest read buffer a WebSocket connection keeps between
// messages; a larger message's buffer goes when it has been handled. It
// holds a 256 KiB message (what wirecat sends per read of a file), whose
// buffer ends at 512 KiB: kept, a bulk transfer reuses it instead of
// growing a new one for every message (a third of the throughput).
const wsKeep = 512 << 10

// receiveMessages reads whole WebSocket messages (each split further by
// the framer, as a datagram is) until the peer closes (nil).
func receiveMessages(c *link.WSConn, m Meta, cfg *Config, t *traffic, emit func([]byte, time.Time)) error {
	buf := make([]byte, 0, 64<<10)
	for {
		if cfg.Flush != nil {
			if err := cfg.Flush(); err != nil {
				return err
			}
		}
		msg, err := c.ReadMessage(buf[:0])
		if err == io.EOF {
			return nil // the peer closed the WebSocket
		}
		if err != nil {
			return err
		}
		at := time.Now()
		t.last.Store(at.UnixNano())
		msgs, err := proto.SplitDatagram(cfg.Framer, msg, cfg.MaxFrame)
		for _, x := range msgs {
			emit(x, at)
		}
		if err != nil {
			return fmt.Errorf("message from %s: %w", m.Remote, err)
		}
		if cap(msg) <= wsKeep {
			buf = msg
		} else {
			buf = make([]byte, 0, 64<<10)
		}
	}
}

// pump sends every message of src, then shuts down the write side. On a
// stream, messages already waiting in the input are written together: one
// write per burst, not per line.
func pump(c net.Conn, src Source, m Meta, cfg *Config, t *traffic, datagram bool) error {
	ev := m.event(event.Data, m.Role, nil, nil) // reused: one allocation per connection
	pending, _ := src.(interface{ Buffered() int })
	var w *bufio.Writer
	if !datagram && pending != nil {
		w = bufio.NewWriterSize(c, 64<<10)
	}
	for {
		msg, err := src.Next()
		if err == io.EOF {
			if w != nil {
				if err := w.Flush(); err != nil {
					return err
				}
			}
			if !datagram {
				link.CloseWrite(c)
			}
			return nil
		}
		if err != nil {
			return err
		}
		// Reported before it goes out, so a record never shows the reply
		// to a message ahead of the message.
		ev.Time, ev.Data = time.Now(), msg.Payload
		t.last.Store(ev.Time.UnixNano())
		cfg.Sink.Emit(ev)
		burstDone := w == nil || pending.Buffered() == 0
		if burstDone {
			cfg.flush()
		}
		if w != nil {
			_, err = w.Write(msg.Wire)
			if err == nil && burstDone {
				err = w.Flush()
			}
		} else {
			err = writeMessage(c, msg.Wire, datagram)
		}
		if err != nil {
			return err
		}
		t.out.Add(int64(len(msg.Wire)))
	}
}

// idle reports a source with nothing waiting to be sent that knows it:
// a listen -k peer's share of stdin. Its connection ends with the peer.
func idle(src Source) bool {
	q, ok := src.(interface{ Queued() int })
	return ok && q.Queued() == 0
}

// maxDatagram is the largest UDP payload over IPv4.
const maxDatagram = 65507

// traffic counts bytes and remembers when anything last moved.
type traffic struct {
	in, out atomic.Int64
	last    atomic.Int64 // unix nanoseconds
}

func (t *traffic) touch() { t.last.Store(time.Now().UnixNano()) }

func (t *traffic) watchIdle(ctx context.Context, idle time.Duration, cancel context.CancelCauseFunc) {
	tick := time.NewTicker(min(idle/4+time.Millisecond, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if time.Since(time.Unix(0, t.last.Load())) >= idle {
				cancel(fmt.Errorf("%w: nothing moved for %v", ErrIdle, idle))
				return
			}
		}
	}
}

// drain waits for the send side after the peer closed: while the input
// still flows it goes on; once it has been still for grace, or a write
// fails because the peer is gone, it stops.
func (t *traffic) drain(sendErr <-chan error, grace time.Duration) error {
	tick := time.NewTicker(grace/5 + time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-sendErr:
			if isGone(err) {
				return nil
			}
			return err
		case <-tick.C:
			if time.Since(time.Unix(0, t.last.Load())) >= grace {
				return nil
			}
		}
	}
}

// chunkReader flushes the output before every read, so a message never
// waits in a buffer while wirecat waits on the network, and stamps each
// chunk with its arrival time: messages cut from one read arrived together,
// and reading the clock per message costs more than framing it.
type chunkReader struct {
	r     io.Reader
	flush func() error
	t     *traffic
	at    time.Time
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.flush != nil {
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	n, err := c.r.Read(p)
	if n > 0 {
		c.at = time.Now()
		c.t.last.Store(c.at.UnixNano())
	}
	return n, err
}

func isStream(c net.Conn) bool {
	switch c := c.(type) {
	case *net.UDPConn, *link.WSConn: // a WebSocket keeps message boundaries
		return false
	case link.Datagrammer: // dtls
		return !c.Datagram()
	case *net.UnixConn:
		return c.LocalAddr().Network() == "unix"
	}
	return true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isGone reports a write to a peer that already left.
func isGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed)
}

// readPlain reads one datagram the portable way, flushing the output first.
func readPlain(c any, buf []byte, flush func() error) (int, net.Addr, error) {
	if flush != nil {
		flush()
	}
	if pc, ok := c.(net.PacketConn); ok {
		return pc.ReadFrom(buf)
	}
	conn := c.(net.Conn)
	n, err := conn.Read(buf)
	return n, conn.RemoteAddr(), err
}
