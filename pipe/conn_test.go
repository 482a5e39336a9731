package pipe

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	deadline := time.Now().Add(20 * time.Second)
	c.SetDeadline(deadline)
	s.SetDeadline(deadline)
	return c, s
}

// recorder is a Sink that keeps what it saw.
type recorder struct {
	mu     sync.Mutex
	kinds  []string
	in     []string
	closed error
}

func (r *recorder) Emit(e *event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kinds = append(r.kinds, e.Kind.String())
	if e.Kind == event.Data && e.Received() {
		r.in = append(r.in, string(e.Data))
	}
	if e.Kind == event.Close {
		r.closed = e.Err
	}
	return nil
}

func (r *recorder) received() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.in, "|")
}

func config(t *testing.T, spec string, sink event.Sink) *Config {
	return &Config{Framer: framer(t, spec), MaxFrame: 1 << 20, Sink: sink, Linger: 100 * time.Millisecond}
}

// serve runs Serve in the background and returns its result channel.
func serve(c net.Conn, cfg *Config, src Source) chan error {
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), c, Meta{ID: 1, Role: event.Client}, cfg, src)
	}()
	return done
}

func wait(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

func TestServeHalfClosesThenPrintsUntilThePeerCloses(t *testing.T) {
	c, peer := tcpPair(t)
	rec := &recorder{}
	done := serve(c, config(t, "line", rec), Messages([]Message{{Payload: []byte("q"), Wire: []byte("q\n")}}, 1))
	b, err := io.ReadAll(peer) // ends at wirecat's half-close
	if err != nil || string(b) != "q\n" {
		t.Fatalf("peer read %q, %v", b, err)
	}
	io.WriteString(peer, "answer 1\nanswer 2\n")
	peer.Close()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if got := rec.received(); got != "answer 1|answer 2" {
		t.Fatalf("received %q", got)
	}
	if k := strings.Join(rec.kinds, ","); !strings.HasPrefix(k, "open,") || !strings.HasSuffix(k, ",close") {
		t.Fatalf("events %s", k)
	}
}

func TestServeInputErrorEndsTheConnection(t *testing.T) {
	c, peer := tcpPair(t)
	boom := errors.New("stdin line 2: bad hex")
	rec := &recorder{}
	done := serve(c, config(t, "raw", rec), &reusing{n: 1, err: boom})
	// The peer never closes: the input's error must end the connection anyway.
	err := wait(t, done)
	if !errors.Is(err, boom) {
		t.Fatalf("Serve = %v, want %v", err, boom)
	}
	if !errors.Is(rec.closed, boom) {
		t.Fatalf("the close event carries %v", rec.closed)
	}
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, _ := io.ReadAll(peer); string(b) != "msg 000" {
		t.Fatalf("peer got %q before the end", b)
	}
}

func TestServeMaxFrame(t *testing.T) {
	c, peer := tcpPair(t)
	cfg := config(t, "line", &recorder{})
	cfg.MaxFrame = 16
	done := serve(c, cfg, nil)
	io.WriteString(peer, strings.Repeat("x", 100)+"\n")
	err := wait(t, done)
	if err == nil || !strings.Contains(err.Error(), "--max-frame") {
		t.Fatalf("Serve = %v, want an error naming --max-frame", err)
	}
}

func TestServeIdle(t *testing.T) {
	c, _ := tcpPair(t)
	cfg := config(t, "raw", &recorder{})
	cfg.Idle = 100 * time.Millisecond
	begin := time.Now()
	if err := wait(t, serve(c, cfg, nil)); err != nil {
		t.Fatalf("an idle end is not a failure: %v", err)
	}
	if took := time.Since(begin); took < 100*time.Millisecond || took > 3*time.Second {
		t.Fatalf("idle 100ms ended after %v", took)
	}
}

func TestServeResetIsAnError(t *testing.T) {
	c, peer := tcpPair(t)
	rec := &recorder{}
	done := serve(c, config(t, "raw", rec), nil)
	io.WriteString(peer, "before")
	time.Sleep(50 * time.Millisecond)
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close()
	err := wait(t, done)
	if err == nil || !strings.Contains(err.Error(), "connection reset by peer") {
		t.Fatalf("Serve = %v", err)
	}
	if rec.received() != "before" {
		t.Fatalf("received %q", rec.received())
	}
}

func TestSendExpectations(t *testing.T) {
	// An echo peer that answers each line with "ok: LINE\n".
	echo := func(t *testing.T, peer net.Conn) {
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := peer.Read(buf)
				if err != nil {
					return
				}
				for _, line := range strings.SplitAfter(string(buf[:n]), "\n") {
					if line != "" {
						io.WriteString(peer, "ok: "+line)
					}
				}
			}
		}()
	}
	msgs := []Message{{Payload: []byte("a"), Wire: []byte("a\n")}, {Payload: []byte("b"), Wire: []byte("b\n")}}
	run := func(t *testing.T, x Expect) (Outcome, error, time.Duration) {
		c, peer := tcpPair(t)
		echo(t, peer)
		begin := time.Now()
		o, err := Send(context.Background(), c, Meta{ID: 1, Role: event.Client}, config(t, "line", &recorder{}), Messages(msgs, 1), x)
		return o, err, time.Since(begin)
	}
	t.Run("replies", func(t *testing.T) {
		o, err, took := run(t, Expect{Replies: 2, Wait: 5 * time.Second})
		if err != nil || o.Replies != 2 || !(Expect{Replies: 2}).Met(o) || took > 3*time.Second {
			t.Fatalf("%+v, %v after %v", o, err, took)
		}
	})
	t.Run("until across messages", func(t *testing.T) {
		o, err, took := run(t, Expect{Until: []byte("ok: b"), Wait: 5 * time.Second})
		if err != nil || !o.Found || took > 3*time.Second {
			t.Fatalf("%+v, %v after %v", o, err, took)
		}
	})
	t.Run("wait passes", func(t *testing.T) {
		o, err, took := run(t, Expect{Replies: 3, Wait: 200 * time.Millisecond})
		if err != nil || o.Replies != 2 || (Expect{Replies: 3}).Met(o) || took < 200*time.Millisecond || o.PeerClosed {
			t.Fatalf("%+v, %v after %v", o, err, took)
		}
	})
	t.Run("peer closes", func(t *testing.T) {
		c, peer := tcpPair(t)
		go func() {
			io.ReadAll(peer)
			io.WriteString(peer, "bye\n")
			peer.Close()
		}()
		// Without a half-close the peer never sees the end: close it from here after the send.
		go func() {
			time.Sleep(100 * time.Millisecond)
			c.(*net.TCPConn).CloseWrite()
		}()
		o, err := Send(context.Background(), c, Meta{ID: 1, Role: event.Client}, config(t, "line", &recorder{}), Messages(msgs, 1), Expect{Wait: 5 * time.Second})
		if err != nil || !o.PeerClosed || o.Replies != 1 {
			t.Fatalf("%+v, %v", o, err)
		}
	})
	t.Run("no wait", func(t *testing.T) {
		o, err, took := run(t, Expect{})
		if err != nil || took > time.Second {
			t.Fatalf("%+v, %v after %v", o, err, took)
		}
	})
}
