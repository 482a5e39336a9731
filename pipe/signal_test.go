package pipe

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/output"
)

// Issue 15 defect 6: a send cut short by Ctrl-C says so, instead of
// looking like --wait passed.
func TestSendInterrupted(t *testing.T) {
	c, peer := tcpPair(t)
	go func() {
		buf := make([]byte, 64)
		peer.Read(buf)
		io.WriteString(peer, "one\n") // then nothing: four replies short
	}()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	begin := time.Now()
	o, err := Send(ctx, c, Meta{ID: 1, Role: event.Client}, config(t, "line", &recorder{}),
		Messages([]Message{{Payload: []byte("hi"), Wire: []byte("hi\n")}}, 1), Expect{Replies: 5, Wait: 5 * time.Second})
	if took := time.Since(begin); took > 2*time.Second {
		t.Fatalf("Send took %v after the cancel", took)
	}
	if err != nil || !o.Interrupted || o.Replies != 1 || o.PeerClosed {
		t.Fatalf("%+v, %v; want interrupted after 1 reply", o, err)
	}
}

// Interrupted is set only when the signal cut the wait short.
func TestSendNotInterrupted(t *testing.T) {
	c, peer := tcpPair(t)
	go func() {
		buf := make([]byte, 64)
		peer.Read(buf)
		io.WriteString(peer, "one\n")
	}()
	o, err := Send(context.Background(), c, Meta{ID: 1, Role: event.Client}, config(t, "line", &recorder{}),
		Messages([]Message{{Payload: []byte("hi"), Wire: []byte("hi\n")}}, 1), Expect{Replies: 5, Wait: 200 * time.Millisecond})
	if err != nil || o.Interrupted || o.Replies != 1 {
		t.Fatalf("%+v, %v; want --wait to pass after 1 reply", o, err)
	}
}

// stuckWriter never returns from Write, like stdout into a paused pager.
type stuckWriter struct{ never chan struct{} }

func (w stuckWriter) Write(p []byte) (int, error) { <-w.never; return len(p), nil }

// Serve printing to a stdout that stopped draining holds the peer back
// (back-pressure), keeps recording what arrived, and ends as soon as ctx
// ends and stdout is abandoned.
func TestServeStuckStdoutEndsOnCancel(t *testing.T) {
	c, peer := tcpPair(t)
	stdout := output.NewDrain(stuckWriter{make(chan struct{})}, 64<<10)
	out, _ := output.New(stdout, output.Options{Mode: "lines"})
	rec := &recorder{}
	cfg := config(t, "line", event.Tee(rec, out))
	cfg.Flush = out.Flush
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, c, Meta{ID: 1, Role: event.Client}, cfg, nil) }()
	line := strings.Repeat("x", 99) + "\n"
	go func() {
		for {
			if _, err := io.WriteString(peer, line); err != nil {
				return
			}
		}
	}()
	// The recording goes past what stdout holds, then stalls with it.
	deadline := time.Now().Add(10 * time.Second)
	for rec.count() < 500 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages recorded", rec.count())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	n := rec.count()
	time.Sleep(200 * time.Millisecond)
	if rec.count() != n {
		t.Fatalf("messages still arrive (%d, then %d) while stdout is stuck: no back-pressure", n, rec.count())
	}
	cancel()
	stdout.Abort()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Serve did not end within a second of the cancel")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.kinds[len(rec.kinds)-1]; got != "close" {
		t.Errorf("the recording ends with %q, want close", got)
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.in)
}
