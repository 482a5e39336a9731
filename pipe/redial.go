package pipe

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/wirecat-dev/wirecat/link"
)

// DialFunc opens the next connection of Redial, with its description. It
// does its own retries (link.Options.Retry); an error ends Redial.
type DialFunc func(ctx context.Context) (net.Conn, Meta, error)

// Redial serves connections from dial like Serve, one after another: when
// the peer goes away (closes or resets) before src is done, it dials again
// and carries on with src where the last connection stopped. A message
// whose write failed is sent again on the next connection; one the kernel
// took before the peer vanished may be lost (TCP gives no receipt), and the
// old connection may end with part of it. It returns when src is done and
// the peer closed, when src fails, or when dial gives up or ctx ends.
//
// Connections that end within a second of opening are redialed after a
// growing wait (backoff(1), backoff(2), ...) so a peer that accepts and
// closes at once is not hammered.
func Redial(ctx context.Context, dial DialFunc, cfg *Config, src Source, backoff func(n int) time.Duration) error {
	var h *handoff
	if src != nil {
		h = &handoff{src: src, next: make(chan result), finished: make(chan struct{})}
		go h.read()
	}
	short := 0
	var last error // the last connection's end
	for {
		dctx, stop := h.whileSending(ctx)
		c, m, err := dial(dctx)
		stop()
		if err != nil {
			if ctx.Err() == nil && h.ended() == io.EOF {
				return last // the input ended while disconnected, all sent
			}
			return err
		}
		start := time.Now()
		var leg Source
		var conn net.Conn = c
		var l *legSource
		if h != nil {
			l = &legSource{h: h, done: make(chan struct{}), quit: make(chan struct{}), peerGone: make(chan struct{})}
			leg, conn = l, &legConn{Conn: c, leg: l}
		}
		err = Serve(ctx, conn, m, cfg, leg)
		last = err
		if l != nil {
			close(l.done)
			// Wait for its pump to let go (it may be failing a write on the
			// closed socket), so a message it puts back goes out first.
			select {
			case <-l.quit:
			case <-time.After(5 * time.Second):
			}
		}
		if ctx.Err() != nil {
			return err
		}
		if h != nil {
			if end := h.ended(); end != nil {
				if end == io.EOF {
					return err // everything went out: the peer's close ends it
				}
				return end
			}
		}
		why := "closed"
		if err != nil {
			why = err.Error()
		}
		short++
		if time.Since(start) >= time.Second {
			short = 1
		}
		wait := backoff(short)
		cfg.Log.Debugf("conn %d %s %s; connecting again in %v", m.ID, m.Remote, why, wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-h.finishedC():
			if end := h.ended(); end != nil {
				t.Stop()
				if end != io.EOF {
					return end
				}
				return err // all sent
			}
			<-t.C // a message is held for the next connection
		case <-t.C:
		}
	}
}

// result is one message, copied.
type result struct{ msg Message }

// handoff reads the source on its own goroutine, so that a read blocked on
// stdin belongs to no connection: the next connection takes the message the
// last one did not get to.
type handoff struct {
	src      Source
	next     chan result
	finished chan struct{} // the source ended: end is set

	mu   sync.Mutex
	held *Message // a message whose write failed: first on the next connection
	end  error    // io.EOF or the source's error, once a connection took it
}

func (h *handoff) read() {
	for {
		m, err := h.src.Next()
		if err != nil {
			h.mu.Lock()
			h.end = err
			h.mu.Unlock()
			close(h.finished)
			return
		}
		// The source reuses its buffers: the copy lives until it is sent.
		h.next <- result{msg: Message{Payload: clone(m.Payload), Wire: clone(m.Wire)}}
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// finishedC is closed when the source has ended; nil (never) without one.
func (h *handoff) finishedC() <-chan struct{} {
	if h == nil {
		return nil
	}
	return h.finished
}

// whileSending is ctx, also ended when the source ends with nothing held:
// a dial then has nothing left to carry.
func (h *handoff) whileSending(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	if h == nil {
		return ctx, cancel
	}
	go func() {
		select {
		case <-h.finished:
			if h.ended() != nil {
				cancel()
			}
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (h *handoff) ended() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held != nil {
		return nil
	}
	return h.end
}

// errLegDone ends the pump of a connection that is over.
var errLegDone = fmt.Errorf("connection over: %w", net.ErrClosed)

// legSource is one connection's share of the handoff.
type legSource struct {
	h    *handoff
	done chan struct{} // the connection is over
	quit chan struct{} // its pump is gone: ended by Next or by a failed write
	once sync.Once
	// peerGone is closed when a read fails or meets the peer's close.
	peerGone chan struct{}
	peerOnce sync.Once
	mu       sync.Mutex
	last     *Message // handed out, its write not yet known to have succeeded
}

// written is told that the message handed out went to the kernel.
func (l *legSource) written() {
	l.mu.Lock()
	l.last = nil
	l.mu.Unlock()
}

func (l *legSource) gone() { l.once.Do(func() { close(l.quit) }) }

// Next hands out the held message, or the next one read. Being asked again
// means the last one was written.
func (l *legSource) Next() (Message, error) {
	l.mu.Lock()
	l.last = nil
	l.mu.Unlock()
	select {
	case <-l.peerGone:
		l.gone()
		return Message{}, errLegDone
	default:
	}
	h := l.h
	h.mu.Lock()
	if m := h.held; m != nil {
		h.held = nil
		h.mu.Unlock()
		return l.take(m), nil
	}
	if h.end != nil {
		h.mu.Unlock()
		l.gone()
		return Message{}, h.end
	}
	h.mu.Unlock()
	select {
	case r := <-h.next:
		select {
		case <-l.done: // too late for this connection: the next one's
			h.mu.Lock()
			h.held = &r.msg
			h.mu.Unlock()
			l.gone()
			return Message{}, errLegDone
		case <-l.peerGone: // likewise
			h.mu.Lock()
			h.held = &r.msg
			h.mu.Unlock()
			l.gone()
			return Message{}, errLegDone
		default:
		}
		return l.take(&r.msg), nil
	case <-h.finished:
		l.gone()
		return Message{}, h.ended()
	case <-l.peerGone:
		l.gone()
		return Message{}, errLegDone
	case <-l.done:
		l.gone()
		return Message{}, errLegDone
	}
}

func (l *legSource) take(m *Message) Message {
	l.mu.Lock()
	l.last = m
	l.mu.Unlock()
	return *m
}

// Queued is 1 while a message is on its way out, so Serve lets it finish
// when the peer closes; 0 lets Serve end with the peer at once.
func (l *legSource) Queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last != nil {
		return 1
	}
	return 0
}

// failed puts back the message whose write failed, for the next connection.
func (l *legSource) failed() {
	l.mu.Lock()
	m := l.last
	l.last = nil
	l.mu.Unlock()
	if m != nil {
		l.h.mu.Lock()
		l.h.held = m
		l.h.mu.Unlock()
	}
	l.gone()
}

// legConn tells its legSource when a write fails.
type legConn struct {
	net.Conn
	leg *legSource
}

func (c *legConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil {
		c.leg.failed()
	} else {
		c.leg.written() // a stream message goes out in one write
	}
	return n, err
}

// Read notes the peer's close (or a failure): from then on the connection
// takes no new message, they wait for the next one.
func (c *legConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.leg.peerOnce.Do(func() { close(c.leg.peerGone) })
	}
	return n, err
}

// CloseWrite half-closes the connection underneath.
func (c *legConn) CloseWrite() error { return link.CloseWrite(c.Conn) }
