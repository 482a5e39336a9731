package output

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
)

// stuck is a writer that blocks until released, like a pipe nobody reads.
type stuck struct {
	release chan struct{}
	mu      sync.Mutex
	b       bytes.Buffer
	entered chan struct{} // receives once per Write that started
}

func newStuck() *stuck {
	return &stuck{release: make(chan struct{}), entered: make(chan struct{}, 1000)}
}

func (s *stuck) Write(p []byte) (int, error) {
	s.entered <- struct{}{}
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *stuck) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// within fails the test unless f returns within d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDrainWritesInOrder(t *testing.T) {
	for _, limit := range []int{1, 15, 16, 17, 1 << 20} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var out syncBuf
			d := NewDrain(&out, limit)
			var want strings.Builder
			for i := range 1000 {
				s := fmt.Sprintf("line %d\n", i)
				want.WriteString(s)
				if _, err := d.Write([]byte(s)); err != nil {
					t.Fatal(err)
				}
				if i%7 == 0 {
					d.Flush()
				}
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != want.String() {
				t.Fatalf("wrote %d bytes out of order or lost, want %d", len(out.String()), want.Len())
			}
			if _, err := d.Write([]byte("late")); err == nil {
				t.Error("a write after Close succeeded")
			}
		})
	}
}

// Flush hands the bytes over without waiting for the writer.
func TestDrainFlushDoesNotWait(t *testing.T) {
	s := newStuck()
	d := NewDrain(s, 64)
	d.Write([]byte("held"))
	within(t, time.Second, "Flush", func() { d.Flush() })
	<-s.entered // the writer has it, and is stuck
	within(t, time.Second, "Flush while the writer is stuck", func() { d.Flush() })
	close(s.release)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if s.String() != "held" {
		t.Fatalf("got %q", s.String())
	}
}

// Write holds the caller back once the queue is full (back-pressure), and
// Abort lets it go.
func TestDrainBackPressureAndAbort(t *testing.T) {
	s := newStuck()
	d := NewDrain(s, 16)
	d.Write([]byte("0123456789"))
	d.Flush()
	<-s.entered                       // the writer holds those 10 bytes, stuck
	d.Write([]byte("abcdefghijklmn")) // 14 queued: fits
	blocked := make(chan error)
	go func() {
		_, err := d.Write([]byte("xyz")) // 17 > 16: waits
		blocked <- err
	}()
	select {
	case err := <-blocked:
		t.Fatalf("a write past the limit returned (%v) while the writer was stuck", err)
	case <-time.After(50 * time.Millisecond):
	}
	syncDone := make(chan error)
	go func() { syncDone <- d.Sync() }()
	d.Abort()
	for _, ch := range []chan error{blocked, syncDone} {
		select {
		case err := <-ch:
			if !errors.Is(err, ErrAborted) {
				t.Errorf("after Abort: %v, want ErrAborted", err)
			}
		case <-time.After(time.Second):
			t.Fatal("Abort did not release a waiting Write or Sync")
		}
	}
	if _, err := d.Write([]byte("later")); !errors.Is(err, ErrAborted) {
		t.Errorf("a write after Abort: %v", err)
	}
	within(t, time.Second, "Close after Abort", func() { d.Close() })
	close(s.release) // the stuck write finishes; nothing else follows
}

// TryWrite takes a write whole or not at all, and never waits.
func TestDrainTryWrite(t *testing.T) {
	s := newStuck()
	d := NewDrain(s, 10)
	if !d.TryWrite([]byte("ab")) {
		t.Fatal("TryWrite refused what fits")
	}
	d.Flush()
	<-s.entered // the writer holds "ab", stuck: the queue is empty again
	if !d.TryWrite([]byte("12345")) || !d.TryWrite([]byte("67890")) {
		t.Fatal("TryWrite refused what fits")
	}
	if d.Free() != 0 {
		t.Errorf("Free = %d, want 0", d.Free())
	}
	within(t, time.Second, "TryWrite on a full queue", func() {
		if d.TryWrite([]byte("x")) {
			t.Error("TryWrite took a byte past the limit")
		}
	})
	if d.Dropped() != 1 {
		t.Errorf("Dropped = %d, want 1", d.Dropped())
	}
	close(s.release)
	d.Close()
	if s.String() != "ab1234567890" {
		t.Errorf("wrote %q", s.String())
	}
}

// A write error is sticky and reported to every writer.
func TestDrainWriteError(t *testing.T) {
	boom := errors.New("boom")
	d := NewDrain(errWriter{boom}, 8)
	d.Write([]byte("a"))
	if err := d.Sync(); !errors.Is(err, boom) {
		t.Fatalf("Sync: %v", err)
	}
	if _, err := d.Write([]byte("b")); !errors.Is(err, boom) {
		t.Errorf("Write after the error: %v", err)
	}
	if d.TryWrite([]byte("c")) {
		t.Error("TryWrite succeeded after the error")
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

var _ io.Writer = (*Drain)(nil)

func dataEvent(s string) *event.Event {
	return &event.Event{Kind: event.Data, Time: at, Conn: 1, Remote: "127.0.0.1:1", Role: event.Relay, From: event.Client, Data: []byte(s)}
}

// A View never waits for stdout: what does not fit is dropped whole and
// counted, the rendering of a message that cannot fit is skipped, and the
// view shows messages again once stdout drains.
func TestViewDropsAndResumes(t *testing.T) {
	for _, mode := range []string{"raw", "lines", "text", "hex", "json"} {
		t.Run(mode, func(t *testing.T) {
			s := newStuck()
			d := NewDrain(s, 4096)
			w, err := New(d, Options{Mode: mode, ShowSent: true, View: true})
			if err != nil {
				t.Fatal(err)
			}
			msg := strings.Repeat("m", 99) + "\n"
			within(t, time.Second, "1000 views into a stuck stdout", func() {
				for range 1000 {
					if err := w.Emit(dataEvent(msg)); err != nil {
						t.Error(err)
					}
					w.Flush()
				}
			})
			events, lines := w.Dropped()
			if events < 900 || lines < events {
				t.Errorf("dropped %d events, %d lines; want most of 1000", events, lines)
			}
			close(s.release) // the pager resumes
			if err := d.Sync(); err != nil {
				t.Fatal(err)
			}
			w.Emit(dataEvent("after the pause"))
			w.Close()
			d.Close()
			out := s.String()
			if mode == "hex" {
				out = strings.ReplaceAll(strings.ReplaceAll(out, "\n", ""), " ", "")
				if !strings.Contains(out, "|afterthepause|") && !strings.Contains(out, "6166746572") {
					t.Errorf("the message after the pause is missing")
				}
				return
			}
			if !strings.Contains(out, "after the pause") {
				t.Errorf("the message after the pause is missing from %d bytes", len(out))
			}
			// Whatever was shown is whole: every line is a complete one.
			if mode == "text" || mode == "json" {
				for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
					if !strings.HasPrefix(l, "03:04:05.678 #1") && !strings.HasPrefix(l, `{"time"`) {
						t.Fatalf("a cut line: %q", l)
					}
				}
			}
		})
	}
}

// Without View, a Writer over a Drain waits for room (back-pressure) and
// is released by Abort.
func TestWriterOverDrainWaitsUntilAbort(t *testing.T) {
	s := newStuck()
	d := NewDrain(s, 256)
	w, _ := New(d, Options{Mode: "lines"})
	done := make(chan error, 1)
	go func() {
		for {
			if err := w.Emit(dataEvent("0123456789abcdef")); err != nil {
				done <- err
				return
			}
			w.Flush()
		}
	}()
	select {
	case err := <-done:
		t.Fatalf("Emit returned %v while stdout was stuck", err)
	case <-time.After(100 * time.Millisecond):
	}
	d.Abort()
	select {
	case err := <-done:
		if !errors.Is(err, ErrAborted) {
			t.Errorf("Emit after Abort: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Abort did not release Emit")
	}
	close(s.release)
}

// A View over a plain writer makes its own Drain; Close writes it out.
func TestViewOwnDrainClose(t *testing.T) {
	var b syncBuf
	w, _ := New(&b, Options{Mode: "text", ShowSent: true, View: true})
	w.Emit(dataEvent("hello"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if want := "03:04:05.678 #1 127.0.0.1:1 client→server hello\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// One message whose view is larger than the Drain's limit is shown when
// the queue is empty, and does not turn the view off for what follows.
func TestViewLargeMessageThenSmall(t *testing.T) {
	var b syncBuf
	d := NewDrain(&b, 0)
	w, err := New(d, Options{Mode: "hex", ShowSent: true, View: true})
	if err != nil {
		t.Fatal(err)
	}
	w.Emit(dataEvent(strings.Repeat("L", 300<<10))) // ~1.3 MB of hex
	w.Flush()
	for i := range 5 {
		w.Emit(dataEvent(fmt.Sprintf("small %d", i)))
		w.Flush()
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if events, lines := w.Dropped(); events != 0 {
		t.Errorf("dropped %d events (%d lines) into a stdout that keeps up", events, lines)
	}
	out := b.String()
	if !strings.Contains(out, "307200 bytes") {
		t.Errorf("the large message is missing from %d bytes of output", len(out))
	}
	if n := strings.Count(out, " 7 bytes\n"); n != 5 {
		t.Errorf("%d of the 5 small messages shown", n)
	}
}

// A view too large to join a queue that is not empty is counted apart from
// what a full queue turns down, and does not hold up the smaller views
// after it. Lines are counted alike before and after rendering; in raw mode
// a chunk is one.
func TestViewDropReasons(t *testing.T) {
	for _, mode := range []string{"raw", "lines", "text", "hex", "json"} {
		t.Run(mode, func(t *testing.T) {
			s := newStuck()
			d := NewDrain(s, 4096)
			w, _ := New(d, Options{Mode: mode, ShowSent: true, View: true})
			w.Emit(dataEvent("first"))
			w.Flush()
			<-s.entered // the writer holds "first", stuck
			w.Emit(dataEvent("queued"))
			w.Emit(dataEvent(strings.Repeat("a\nb", 2000))) // view over 4096 bytes: too large now
			w.Emit(dataEvent("after the large one"))        // still fits
			slow, large := w.DroppedBy()
			wantLines := int64(1)
			if mode == "hex" {
				wantLines = 1 + (6000+15)/16
			}
			if slow != (Drops{}) || large != (Drops{1, wantLines}) {
				t.Errorf("slow %+v, large %+v; want none and {1 %d}", slow, large, wantLines)
			}
			for range 200 { // fill the queue: the rest is turned down as slow
				w.Emit(dataEvent(strings.Repeat("s", 100)))
			}
			slow, _ = w.DroppedBy()
			if slow.Events < 100 || slow.Lines != slow.Events*(map[bool]int64{true: 8, false: 1}[mode == "hex"]) {
				t.Errorf("slow %+v: want most of 200 events, lines counted per event", slow)
			}
			close(s.release)
			d.Close()
			if out := s.String(); !strings.Contains(out, "after the large one") && mode != "hex" {
				t.Errorf("the view after the large message is missing: %q", out)
			}
		})
	}
}
