package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/pipe"
	"github.com/wirecat-dev/wirecat/proto"
)

// sessionBacklog is how many datagrams a session holds while its target is
// being dialed or written slowly; beyond it datagrams are dropped, as a
// network would.
const sessionBacklog = 256

// ServePacket relays the datagrams arriving on pc: each sender address is a
// session with its own connection to the target, ended after Config.Idle
// (DefaultIdle when 0) of silence. Replies go back to that sender. It
// returns when ctx ends, after every session is closed; it closes pc.
func (r *Relay) ServePacket(ctx context.Context, pc net.PacketConn, transport string) error {
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	defer r.wg.Wait()
	defer pc.Close()
	local := pc.LocalAddr().String()
	var mu sync.Mutex
	sessions := map[string]*session{}
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		key := ""
		if addr != nil {
			key = addr.String()
		}
		mu.Lock()
		s := sessions[key]
		mu.Unlock()
		if s != nil && s.deliver(buf[:n], r) {
			continue
		}
		if !r.admit(addr, true) {
			continue
		}
		s = &session{in: make(chan []byte, sessionBacklog), gone: make(chan struct{}), max: r.cfg.MaxFrame, flush: r.cfg.Flush}
		mu.Lock()
		sessions[key] = s
		mu.Unlock()
		s.deliver(buf[:n], r)
		client := &side{from: event.Client, addr: key, src: s,
			sink: sessionSink{pc: pc, addr: addr}, close: s.close}
		r.active.Add(1)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer r.active.Add(-1)
			r.run(ctx, pipe.NextID(), transport, local, client)
			s.close()
			mu.Lock()
			if sessions[key] == s {
				delete(sessions, key)
			}
			mu.Unlock()
		}()
	}
}

// session is one datagram sender: its datagrams, as the source of the
// client → server direction.
type session struct {
	mu      sync.Mutex
	in      chan []byte
	gone    chan struct{}
	closed  bool
	dropped int
	max     int
	flush   func() error
}

// deliver queues a copy of a datagram; false when the session has ended.
func (s *session) deliver(b []byte, r *Relay) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	select {
	case s.in <- append([]byte(nil), b...):
	default:
		s.dropped++
		if s.dropped == 1 || s.dropped%1000 == 0 {
			r.cfg.Log.Debugf("a datagram session is behind: %d datagrams dropped", s.dropped)
		}
	}
	return true
}

func (s *session) next() ([]byte, error) {
	select {
	case b := <-s.in:
		return s.check(b)
	default:
	}
	if s.flush != nil {
		s.flush() // about to wait: show what is buffered
	}
	select {
	case b := <-s.in:
		return s.check(b)
	case <-s.gone:
		return nil, io.EOF
	}
}

func (s *session) check(b []byte) ([]byte, error) {
	if s.max > 0 && len(b) > s.max {
		return nil, fmt.Errorf("datagram of %d bytes: %w", len(b), proto.ErrTooLarge)
	}
	return b, nil
}

func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.gone)
	}
}

// sessionSink sends each message as one datagram to the session's sender.
type sessionSink struct {
	pc   net.PacketConn
	addr net.Addr
}

func (s sessionSink) encode(_, msg []byte) ([]byte, error) { return msg, nil }
func (s sessionSink) send(wire []byte) error {
	return sendDatagrams(wire, func(b []byte) error { _, err := s.pc.WriteTo(b, s.addr); return err })
}
func (sessionSink) closeWrite()    {}
func (sessionSink) datagram() bool { return true }
