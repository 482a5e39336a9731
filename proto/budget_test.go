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
