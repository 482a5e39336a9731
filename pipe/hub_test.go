package pipe

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

// collect reads src until io.EOF, within d.
func collect(t *testing.T, src Source, d time.Duration) []string {
	t.Helper()
	type result struct {
		got []string
		err error
	}
	done := make(chan result, 1)
	go func() {
		var got []string
		for {
			m, err := src.Next()
			if err == io.EOF {
				done <- result{got, nil}
				return
			}
			if err != nil {
				done <- result{got, err}
				return
			}
			got = append(got, string(m.Payload)+"|"+string(m.Wire))
		}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Next: %v", r.err)
		}
		return r.got
	case <-time.After(d):
		t.Fatalf("the source did not end within %v", d)
		return nil
	}
}

// reusing is a Source that overwrites one buffer on every call, as Input does.
type reusing struct {
	buf  []byte
	n, i int
	err  error // returned after the n messages instead of io.EOF
}

func (r *reusing) Next() (Message, error) {
	if r.i == r.n {
		if r.err != nil {
			return Message{}, r.err
		}
		return Message{}, io.EOF
	}
	r.buf = fmt.Appendf(r.buf[:0], "msg %03d", r.i)
	r.i++
	return Message{Payload: r.buf[3:], Wire: r.buf}, nil
}

func want(n int) []string {
	var w []string
	for i := 0; i < n; i++ {
		w = append(w, fmt.Sprintf(" %03d|msg %03d", i, i))
	}
	return w
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHubBroadcastsToEveryFeed(t *testing.T) {
	h := NewHub()
	var feeds []Source
	for i := 0; i < 3; i++ {
		f, done := h.Subscribe()
		defer done()
		feeds = append(feeds, f)
	}
	if h.Peers() != 3 {
		t.Fatalf("Peers = %d", h.Peers())
	}
	errc := make(chan error, 1)
	go func() { errc <- h.Run(&reusing{n: 10}) }()
	for i, f := range feeds {
		// Each feed gets its own copy even though the source reuses its buffer.
		if got := collect(t, f, 5*time.Second); !equal(got, want(10)) {
			t.Fatalf("feed %d got %q", i, got)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// After the end a new peer only receives.
	if f, done := h.Subscribe(); f != nil {
		t.Fatalf("Subscribe after the end = %v, want nil", f)
	} else {
		done()
	}
}

func TestHubSlowFeedHoldsTheInput(t *testing.T) {
	h := NewHub()
	fast, doneFast := h.Subscribe()
	defer doneFast()
	slow, doneSlow := h.Subscribe()
	defer doneSlow()
	const n = 100
	finished := make(chan error, 1)
	go func() { finished <- h.Run(&reusing{n: n}) }()

	fastGot := make(chan []string, 1)
	go func() {
		var got []string
		for {
			m, err := fast.Next()
			if err != nil {
				fastGot <- got
				return
			}
			got = append(got, string(m.Payload)+"|"+string(m.Wire))
		}
	}()
	// The slow feed reads nothing: the input stops once its queue is full
	// instead of dropping its messages.
	select {
	case err := <-finished:
		t.Fatalf("Run finished (%v) while a feed had read nothing: messages were dropped", err)
	case <-time.After(200 * time.Millisecond):
	}
	if q := slow.(*feed).Queued(); q != cap(slow.(*feed).ch) {
		t.Fatalf("slow feed holds %d messages, want a full queue of %d", q, cap(slow.(*feed).ch))
	}
	if got := collect(t, slow, 5*time.Second); !equal(got, want(n)) {
		t.Fatalf("slow feed got %d messages, want all %d in order", len(got), n)
	}
	if err := <-finished; err != nil {
		t.Fatal(err)
	}
	if got := <-fastGot; !equal(got, want(n)) {
		t.Fatalf("fast feed got %d messages", len(got))
	}
}

func TestHubFeedThatLeavesUnblocksTheInput(t *testing.T) {
	h := NewHub()
	stuck, leave := h.Subscribe()
	other, doneOther := h.Subscribe()
	defer doneOther()
	finished := make(chan error, 1)
	go func() { finished <- h.Run(&reusing{n: 100}) }()
	time.Sleep(50 * time.Millisecond) // stuck's queue fills up
	leave()
	if h.Peers() != 1 {
		t.Fatalf("Peers = %d after one left", h.Peers())
	}
	// The peer that left sees the end at once, queued messages or not.
	if _, err := stuck.Next(); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if got := collect(t, other, 5*time.Second); !equal(got, want(100)) {
		t.Fatalf("the remaining feed got %d messages", len(got))
	}
	if err := <-finished; err != nil {
		t.Fatal(err)
	}
}

// A feed whose peer left returns io.EOF even though the input never says
// anything: the peer's sender must not outlive it.
func TestHubFeedEndsWhenThePeerLeaves(t *testing.T) {
	h := NewHub()
	f, leave := h.Subscribe()
	got := make(chan error, 1)
	go func() {
		_, err := f.Next()
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	leave()
	select {
	case err := <-got:
		if err != io.EOF {
			t.Fatalf("Next = %v, want io.EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next still blocked after the peer left")
	}
}

func TestHubInputErrorEndsEveryFeed(t *testing.T) {
	h := NewHub()
	f, done := h.Subscribe()
	defer done()
	boom := errors.New("stdin broke")
	errc := make(chan error, 1)
	go func() { errc <- h.Run(&reusing{n: 2, err: boom}) }()
	if got := collect(t, f, 5*time.Second); !equal(got, want(2)) {
		t.Fatalf("got %q", got)
	}
	if err := <-errc; !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want %v", err, boom)
	}
}

func TestHubWithNoPeersDropsNothingLater(t *testing.T) {
	// Messages typed while nobody is connected go nowhere; a peer that
	// subscribes afterwards gets what comes after.
	h := NewHub()
	src := &askingSource{in: make(chan Message), asked: make(chan struct{})}
	errc := make(chan error, 1)
	go func() { errc <- h.Run(src) }()
	<-src.asked
	src.in <- Message{Payload: []byte("nobody"), Wire: []byte("nobody")}
	<-src.asked // Run is done with "nobody" and waits for the next one
	f, done := h.Subscribe()
	defer done()
	src.in <- Message{Payload: []byte("you"), Wire: []byte("you")}
	<-src.asked
	close(src.in)
	if got := collect(t, f, 5*time.Second); !equal(got, []string{"you|you"}) {
		t.Fatalf("got %q", got)
	}
	<-errc
}

// askingSource tells when the hub asks for its next message.
type askingSource struct {
	in    chan Message
	asked chan struct{}
}

func (a *askingSource) Next() (Message, error) {
	a.asked <- struct{}{} // the test takes every one
	m, ok := <-a.in
	if !ok {
		return Message{}, io.EOF
	}
	return m, nil
}
