package pipe

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
)

// Expect is what `send` waits for once its messages are out.
type Expect struct {
	Interval time.Duration // pause between messages
	Wait     time.Duration // give up after this long with nothing arriving (0: do not wait)
	Replies  int           // stop once this many messages arrived
	Until    []byte        // stop once this text arrived
	// HalfClose shuts down the write side after the last message, for a
	// server that answers once the client's input ends.
	HalfClose bool
}

// Outcome is what arrived.
type Outcome struct {
	Replies    int
	Bytes      int64
	Found      bool // Until was seen
	PeerClosed bool
	// Interrupted: ctx ended (Ctrl-C) before the expectation was met, the
	// peer closed or Wait passed.
	Interrupted bool
}

// Met reports whether the expectation was met.
func (x Expect) Met(o Outcome) bool {
	return o.Replies >= x.Replies && (len(x.Until) == 0 || o.Found)
}

func (x Expect) waits() bool { return x.Wait > 0 || x.Replies > 0 || len(x.Until) > 0 }

// Send sends every message of src over c, then collects replies until the
// expectation is met, the peer closes, or Wait passes with nothing arriving.
func Send(ctx context.Context, c net.Conn, m Meta, cfg *Config, src Source, x Expect) (Outcome, error) {
	defer c.Close()
	cfg.Sink.Emit(m.event(event.Open, 0, nil, nil))
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	var (
		mu     sync.Mutex
		out    Outcome
		window []byte // the tail of what arrived, to find Until across messages
	)
	arrived := make(chan struct{}, 1)
	recvDone := make(chan error, 1)
	t := &traffic{}
	go func() {
		keep := max(len(x.Until)-1, 0)
		recvDone <- receive(c, m, cfg, t, func(msg []byte) {
			mu.Lock()
			out.Replies++
			if len(x.Until) > 0 && !out.Found {
				window = append(window, msg...)
				out.Found = bytes.Contains(window, x.Until)
				if len(window) > keep {
					window = append(window[:0], window[len(window)-keep:]...)
				}
			}
			mu.Unlock()
			select {
			case arrived <- struct{}{}:
			default:
			}
		})
	}()

	snapshot := func() Outcome {
		mu.Lock()
		defer mu.Unlock()
		o := out
		o.Bytes = t.in.Load()
		return o
	}
	finish := func(err error, by event.Side) (Outcome, error) {
		c.Close()
		o := snapshot()
		if err != nil {
			cfg.Sink.Emit(m.event(event.Error, 0, nil, err))
		}
		cfg.Sink.Emit(m.closeEvent(c, by, err))
		cfg.flush()
		return o, err
	}

	interrupted := func() (Outcome, error) {
		mu.Lock()
		out.Interrupted = true
		mu.Unlock()
		return finish(nil, m.Role)
	}

	datagram := !isStream(c)
	for first := true; ; first = false {
		msg, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return finish(err, m.Role)
		}
		if !first && x.Interval > 0 {
			select {
			case <-time.After(x.Interval):
			case <-ctx.Done():
				return interrupted()
			}
		}
		cfg.Sink.Emit(m.event(event.Data, m.Role, msg.Payload, nil)) // before the reply can arrive
		cfg.flush()
		if err := writeMessage(c, msg.Wire, datagram); err != nil {
			if ctx.Err() != nil {
				return interrupted()
			}
			return finish(err, m.Role)
		}
		t.out.Add(int64(len(msg.Wire)))
	}
	if x.HalfClose && !datagram {
		link.CloseWrite(c)
	}
	if !x.waits() {
		return finish(nil, m.Role)
	}
	wait := x.Wait
	if wait <= 0 {
		wait = time.Second
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if (x.Replies > 0 || len(x.Until) > 0) && x.Met(snapshot()) {
			return finish(nil, m.Role)
		}
		select {
		case <-arrived:
			timer.Reset(wait)
		case err := <-recvDone:
			if err != nil && ctx.Err() != nil {
				return interrupted() // the signal closed the connection under the reader
			}
			mu.Lock()
			out.PeerClosed = err == nil
			mu.Unlock()
			if err != nil && isTimeout(err) {
				err = nil
			}
			return finish(err, m.Role.Other())
		case <-timer.C:
			return finish(nil, m.Role)
		case <-ctx.Done():
			return interrupted()
		}
	}
}

func writeMessage(c net.Conn, wire []byte, datagram bool) error {
	for len(wire) > 0 {
		chunk := wire
		if _, ws := c.(*link.WSConn); datagram && !ws && len(chunk) > maxDatagram {
			chunk = chunk[:maxDatagram]
		}
		if _, err := c.Write(chunk); err != nil {
			return err
		}
		wire = wire[len(chunk):]
	}
	return nil
}

// Messages is a Source over a fixed list, repeated n times.
func Messages(msgs []Message, n int) Source {
	return &list{msgs: msgs, left: n}
}

type list struct {
	msgs []Message
	i    int
	left int
}

func (l *list) Next() (Message, error) {
	for l.left > 0 {
		if l.i < len(l.msgs) {
			l.i++
			return l.msgs[l.i-1], nil
		}
		l.i = 0
		l.left--
	}
	return Message{}, io.EOF
}
