package replay

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/session"
)

// writeSession records evs (times in ms from the start) to a file.
func writeSession(t *testing.T, frame string, evs []event.Event) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.jsonl")
	start := time.Now()
	w, err := session.Create(path, session.Header{Frame: frame, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		evs[i].Time = start.Add(time.Duration(i) * time.Millisecond)
		w.Emit(&evs[i])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func ledSession(t *testing.T, server string, conns int) string {
	var evs []event.Event
	for id := uint64(1); id <= uint64(conns); id++ {
		evs = append(evs, event.Event{Kind: event.Open, Conn: id, Transport: "tcp", Role: event.Client, Local: "127.0.0.1:40000", Remote: server})
	}
	for id := uint64(1); id <= uint64(conns); id++ { // interleaved, as concurrent connections are
		for _, s := range []string{"LED ON", "LED OFF"} {
			evs = append(evs,
				event.Event{Kind: event.Data, Conn: id, From: event.Client, Data: []byte(s)},
				event.Event{Kind: event.Data, Conn: id, From: event.Server, Data: []byte(ledReply(s))})
		}
	}
	for id := uint64(1); id <= uint64(conns); id++ {
		evs = append(evs, event.Event{Kind: event.Close, Conn: id, From: event.Client})
	}
	return writeSession(t, "line", evs)
}

// A streamed client replay plays every connection of a recording it reads
// as it goes, and checks the answers.
func TestStreamClients(t *testing.T) {
	addr := lineServer(t, ledReply)
	path := ledSession(t, addr, 5)
	s, err := OpenStream(path)
	if err != nil {
		t.Fatal(err)
	}
	if side, err := s.DefaultSide(); err != nil || side != event.Client {
		t.Fatalf("default side %v %v", side, err)
	}
	if c, err := s.Select(event.Client, 0); err != nil || c.ID != 1 || c.Server != addr {
		t.Fatalf("select: %+v %v", c, err)
	}
	sk := &sink{}
	cfg := lineCfg(t, event.Client, true, sk)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := RunStream(ctx, s, cfg); err != nil {
		t.Fatal(err)
	}
	if got := len(sk.data(event.Server)); got != 10 {
		t.Fatalf("%d answers, want 10", got)
	}
	// A changed answer is still a difference.
	other := lineServer(t, func(s string) string { return "LED is BROKEN" })
	s, _ = OpenStream(ledSession(t, other, 2))
	s.Select(event.Client, 2)
	if err := RunStream(ctx, s, lineCfg(t, event.Client, true, &sink{})); !isDifference(err) || !strings.Contains(err.Error(), "connection 2, message 2") {
		t.Fatalf("want a difference in connection 2, got %v", err)
	}
}

// A streamed server replay gives each peer the next recorded connection,
// read from its own open line, round again.
func TestStreamServer(t *testing.T) {
	port := freePort(t)
	path := ledSession(t, fmt.Sprintf("127.0.0.1:%d", port), 2)
	s, err := OpenStream(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Select(event.Server, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	listening := make(chan net.Addr, 1)
	cfg := lineCfg(t, event.Server, false, &sink{})
	cfg.Listening = func(a net.Addr) { listening <- a }
	done := make(chan error, 1)
	go func() { done <- RunStream(ctx, s, cfg) }()
	a := <-listening
	for range 5 {
		c, err := net.Dial("tcp", a.String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		for _, q := range []string{"LED ON", "LED OFF"} {
			io.WriteString(c, q+"\n")
			line, err := r.ReadString('\n')
			if err != nil || line != ledReply(q)+"\n" {
				t.Fatalf("asked %q, got %q, %v", q, line, err)
			}
		}
		c.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Select names what is missing without loading the file.
func TestStreamSelect(t *testing.T) {
	path := ledSession(t, "127.0.0.1:1", 3)
	s, _ := OpenStream(path)
	if _, err := s.Select(event.Client, 9); err == nil || !strings.Contains(err.Error(), "has no connection 9 (it has 1, 2, 3)") {
		t.Fatalf("conn 9: %v", err)
	}
	empty := writeSession(t, "line", nil)
	s, _ = OpenStream(empty)
	if _, err := s.Select(event.Client, 0); err == nil || !strings.Contains(err.Error(), "has no connection") {
		t.Fatalf("empty: %v", err)
	}
	os.Remove(empty)
}

// A server replay's reader of a connection never closed in the recording
// stops soon after its peer left, or after the replay's end (a signal),
// instead of reading the rest of the file.
func TestReadConvStopsWhenGone(t *testing.T) {
	evs := []event.Event{
		{Kind: event.Open, Conn: 1, Transport: "tcp", Role: event.Client, Local: "127.0.0.1:40000", Remote: "127.0.0.1:1"},
		{Kind: event.Data, Conn: 1, From: event.Client, Data: []byte("hello")},
	}
	for range 5000 { // another connection's records, and no close for 1
		evs = append(evs, event.Event{Kind: event.Data, Conn: 2, From: event.Client, Data: []byte("other")})
	}
	path := writeSession(t, "line", evs)
	r, err := session.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil { // conn 1's open
		t.Fatal(err)
	}
	off, line := r.Offset()
	r.Close()
	pool := newFeedPool()

	f := pool.newFeed(feedLimit)
	f.stop() // the peer left
	c := &Conv{ID: 1}
	if n := readConv(context.Background(), path, off, line, c, f); n > goneEvery {
		t.Errorf("peer gone: %d records read, want at most %d", n, goneEvery)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a signal
	f = pool.newFeed(feedLimit)
	if n := readConv(ctx, path, off, line, c, f); n > goneEvery {
		t.Errorf("replay ended: %d records read, want at most %d", n, goneEvery)
	}
	// Still playing: the whole file is read.
	f = pool.newFeed(feedLimit)
	if n := readConv(context.Background(), path, off, line, c, f); n < 5000 {
		t.Errorf("playing: %d records read, want the file", n)
	}
}

// The bytes held for connections that do not play yet are counted under
// the pool's lock: put, play, take and stop keep the counts exact, and
// admit refuses past the bound only when a due connection is starved of
// descriptors (the reader otherwise waits for connections to start).
func TestFeedPendingAccounting(t *testing.T) {
	pool := newFeedPool()
	a, b := pool.newPendingFeed(), pool.newPendingFeed()
	msg := Msg{Data: make([]byte, 100)}
	for range 3 {
		a.put(msg)
		b.put(msg)
	}
	if pool.pending != 600 || pool.bytes != 0 {
		t.Fatalf("pending %d bytes %d, want 600 0", pool.pending, pool.bytes)
	}
	a.play()
	if pool.pending != 300 || pool.bytes != 300 {
		t.Fatalf("after play: pending %d bytes %d, want 300 300", pool.pending, pool.bytes)
	}
	a.peek(context.Background())
	a.take()
	a.stop()
	b.stop()
	b.stop()
	if pool.pending != 0 || pool.bytes != 0 {
		t.Fatalf("after stop: pending %d bytes %d, want 0 0", pool.pending, pool.bytes)
	}

	c := pool.newPendingFeed()
	c.put(Msg{Data: make([]byte, 1000)})
	pool.setStarved(true)
	if pool.admit(context.Background(), 500) {
		t.Fatal("starved and over the bound: admitted")
	}
	pool.setStarved(false)
	done := make(chan bool, 1)
	go func() { done <- pool.admit(context.Background(), 500) }()
	select {
	case <-done:
		t.Fatal("over the bound: admit did not wait for the connection to play")
	case <-time.After(50 * time.Millisecond):
	}
	c.play()
	if ok := <-done; !ok {
		t.Fatal("admit refused once the connection played")
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := pool.newPendingFeed()
	d.put(Msg{Data: make([]byte, 1000)})
	go func() { done <- pool.admit(ctx, 500) }()
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("admit did not return when ctx ended")
	}
}
