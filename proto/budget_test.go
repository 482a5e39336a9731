package proto

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// partial returns a Reader over a stream that starts an n-byte line and
// never finishes it.
func partial(t *testing.T, n int) *Reader {
	t.Helper()
	f, err := Parse("line", nil)
	if err != nil {
		t.Fatal(err)
	}
	return NewReader(io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("x"), n)), strings.NewReader("\n")), f, 1<<20)
}

// The grown buffers of all Readers share one budget: a Reader refused more
// is told why, and one released makes room for the next.
func TestBufferBudgetAcrossReaders(t *testing.T) {
	SetBufferBudget(300 << 10)
	defer SetBufferBudget(0)
	base := BufferedTotal()

	a := partial(t, 200<<10) // grows to 256 KiB
	if msg, err := a.Next(); err != nil || len(msg) != 200<<10 {
		t.Fatalf("first reader: %d bytes, %v", len(msg), err)
	}
	if got := BufferedTotal() - base; got != 256<<10 {
		t.Fatalf("%d bytes counted, want 256 KiB", got)
	}
	b := partial(t, 100<<10) // needs 128 KiB more: over the budget
	if _, err := b.Next(); !errors.Is(err, ErrBudget) {
		t.Fatalf("second reader: %v, want ErrBudget", err)
	}
	if got := BufferedTotal() - base; got != 256<<10 {
		t.Fatalf("%d bytes counted after a refusal, want 256 KiB", got)
	}
	a.Release()
	b.Release()
	if got := BufferedTotal() - base; got != 0 {
		t.Fatalf("%d bytes counted after Release, want 0", got)
	}
	c := partial(t, 100<<10)
	if msg, err := c.Next(); err != nil || len(msg) != 100<<10 {
		t.Fatalf("a reader after the release: %d bytes, %v", len(msg), err)
	}
	c.Release()
}

// A Reader dropped without Release gives its share back once collected.
func TestBufferBudgetWithoutRelease(t *testing.T) {
	base := BufferedTotal()
	func() {
		r := partial(t, 200<<10)
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for BufferedTotal() != base {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still counted", BufferedTotal()-base)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// idleAfter is a stream that hands out data and then reports errIdle: a
// connection whose peer went quiet, as seen by a Reader blocked in Read.
type idleAfter struct{ data []byte }

var errIdle = errors.New("idle")

func (s *idleAfter) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, errIdle
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

// A buffer grown for one large message goes back to the starting size once
// the message is through, and its share of the budget with it: connections
// that once carried a large message and went idle hold none of it.
func TestBufferShrinksAfterLargeMessage(t *testing.T) {
	for _, spec := range []string{"line", "slip"} {
		t.Run(spec, func(t *testing.T) {
			SetBufferBudget(4 << 20)
			defer SetBufferBudget(0)
			base := BufferedTotal()
			f, err := Parse(spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			big := bytes.Repeat([]byte("x"), 700<<10)
			wire, err := f.Encode(nil, big)
			if err != nil {
				t.Fatal(err)
			}
			var readers []*Reader
			defer func() {
				for _, r := range readers {
					r.Release()
				}
			}()
			for i := range 8 {
				r := NewReader(&idleAfter{bytes.Clone(wire)}, f, 1<<20)
				if spec == "slip" {
					r.Lossless() // decodes into scratch, which must shrink too
				}
				readers = append(readers, r)
				if msg, err := r.Next(); err != nil || len(msg) != len(big) {
					t.Fatalf("reader %d: %d bytes, %v", i, len(msg), err)
				}
				if _, err := r.Next(); err != errIdle { // now waiting for more
					t.Fatalf("reader %d: %v, want the idle stream's error", i, err)
				}
				if got := BufferedTotal() - base; got != 0 {
					t.Fatalf("reader %d: %d bytes still counted while idle, want 0", i, got)
				}
				if len(r.buf) != readSize || cap(r.scratch) > readSize {
					t.Fatalf("reader %d: buffer %d and scratch %d bytes while idle, want %d at most", i, len(r.buf), cap(r.scratch), readSize)
				}
			}
		})
	}
}

// A Lossless Reader refused room by the budget in the middle of a frame of
// known length passes the rest of that frame on as chunks, and reads the
// frames after it as messages: the framing is not lost.
func TestBudgetKeepsLengthFraming(t *testing.T) {
	for _, spec := range []string{"len:u32be", "fixed:200005"} {
		t.Run(spec, func(t *testing.T) {
			SetBufferBudget(1)
			defer SetBufferBudget(0)
			f, err := Parse(spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			first := bytes.Repeat([]byte("\x00\x00\x00\x05hello"), 200000/9+1)[:200005]
			second := []byte("hello")
			if spec != "len:u32be" {
				second = bytes.Repeat([]byte("h"), 200005)
			}
			var in []byte
			for _, m := range [][]byte{first, second} {
				if in, err = f.Encode(in, m); err != nil {
					t.Fatal(err)
				}
			}
			ps := readLossless(t, bytes.NewReader(in), f, 1<<20)
			if wireOf(ps) != string(in) {
				t.Fatal("the wire bytes differ from the input")
			}
			var msgs []string
			framed := 0
			for _, p := range ps {
				if p.unframed == nil {
					msgs = append(msgs, p.msg)
					continue
				}
				if !errors.Is(p.unframed, ErrBudget) {
					t.Errorf("chunk for %v, want ErrBudget", p.unframed)
				}
				framed += len(p.wire)
			}
			if spec == "len:u32be" {
				if len(msgs) != 1 || msgs[0] != "hello" || framed != len(in)-9 {
					t.Fatalf("messages %q and %d bytes of chunks; want only \"hello\" and %d", msgs, framed, len(in)-9)
				}
				return
			}
			if len(msgs) != 0 || framed != len(in) {
				t.Fatalf("%d messages and %d bytes of chunks; want none and %d", len(msgs), framed, len(in))
			}
		})
	}
}
