package progress

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newFake(enabled bool) (*Meter, *bytes.Buffer, *fakeClock) {
	clk := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	var buf bytes.Buffer
	return NewClock(&buf, enabled, clk.now), &buf, clk
}

func TestQuietDuringFirstSecond(t *testing.T) {
	m, buf, clk := newFake(true)
	for i := 0; i < 9; i++ {
		m.Sent().Add(1 << 20)
		clk.advance(100 * time.Millisecond)
	}
	m.Done()
	if buf.Len() != 0 {
		t.Fatalf("a transfer under a second printed %q", buf)
	}
}

func TestLineAfterOneSecondAtMostFourTimesASecond(t *testing.T) {
	m, buf, clk := newFake(true)
	// 1 MiB every 10ms for 3s: 100 MiB/s.
	for i := 0; i < 300; i++ {
		clk.advance(10 * time.Millisecond)
		m.Sent().Add(1 << 20)
	}
	// Drawn at 1s, 1.25s ... 3s.
	if draws := strings.Count(buf.String(), "\r"); draws != 9 {
		t.Fatalf("%d redraws in 3s, want 9: %q", draws, buf)
	}
	frames := strings.Split(buf.String(), "\r")
	if frames[1] != "100 MiB  100 MiB/s" {
		t.Fatalf("first frame %q", frames[1])
	}
	lastFrame := frames[len(frames)-1]
	if lastFrame != "300 MiB  100 MiB/s" {
		t.Fatalf("last frame %q, want 300 MiB at 100 MiB/s", lastFrame)
	}
	before := buf.Len()
	m.Done()
	end := buf.String()[before:]
	if end != "\r"+strings.Repeat(" ", len(strings.TrimRight(lastFrame, " ")))+"\r" {
		t.Fatalf("Done wrote %q, want the line blanked", end)
	}
	m.Sent().Add(5) // a straggler after Done draws nothing
	m.Done()
	if buf.Len() != len(buf.String()[:before])+len(end) {
		t.Fatalf("something was drawn after Done: %q", buf.String()[before:])
	}
}

func TestFirstRateIsTheAverage(t *testing.T) {
	m, buf, clk := newFake(true)
	m.Received().Add(3 << 20)
	clk.advance(1500 * time.Millisecond)
	m.Received().Add(64 << 10) // the meter looks at the clock once per 64 KiB
	if got, want := buf.String(), "\r3.1 MiB  2.0 MiB/s"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestShorterLineBlanksTheLonger(t *testing.T) {
	m, buf, clk := newFake(true)
	clk.advance(time.Second)
	m.Sent().Add(1000 << 20) // 1000 MiB/s
	clk.advance(time.Second)
	m.Sent().Add(64 << 10) // the rate about halves: "500 MiB/s" and so on
	frames := strings.Split(buf.String(), "\r")[1:]
	if len(frames) != 2 {
		t.Fatalf("frames %q", frames)
	}
	if len(frames[1]) < len(frames[0]) {
		t.Fatalf("second frame %q is shorter than first %q: the tail stays on screen", frames[1], frames[0])
	}
}

func TestDisabledCountsButPrintsNothing(t *testing.T) {
	m, buf, clk := newFake(false)
	m.Sent().Add(1 << 30)
	clk.advance(2300 * time.Millisecond)
	m.Received().Add(12)
	m.Done()
	if buf.Len() != 0 {
		t.Fatalf("disabled meter printed %q", buf)
	}
	if got, want := m.Totals(), "sent 1.0 GiB, received 12 B in 2.3s (445 MiB/s)"; got != want {
		t.Fatalf("Totals() = %q, want %q", got, want)
	}
	clk.advance(time.Hour) // elapsed stops at Done
	if m.Elapsed() != 2300*time.Millisecond {
		t.Fatalf("Elapsed() = %v after Done", m.Elapsed())
	}
}

func TestNilMeter(t *testing.T) {
	var m *Meter
	m.Sent().Add(5)
	m.Received().Writer(io.Discard).Write([]byte("x"))
	m.Done()
	if s, r := m.Bytes(); s != 0 || r != 0 {
		t.Fatal("nil meter counted")
	}
}

func TestWriterCounts(t *testing.T) {
	m, _, _ := newFake(false)
	var out bytes.Buffer
	w := m.Received().Writer(&out)
	io.Copy(w, strings.NewReader(strings.Repeat("x", 70000)))
	if _, r := m.Bytes(); r != 70000 || out.Len() != 70000 {
		t.Fatalf("counted %d, wrote %d", r, out.Len())
	}
}

func TestConcurrentAdds(t *testing.T) {
	m, _, clk := newFake(true)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				m.Sent().Add(1)
				m.Received().Add(2)
				clk.advance(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	m.Done()
	if s, r := m.Bytes(); s != 4000 || r != 8000 {
		t.Fatalf("sent %d received %d", s, r)
	}
}

func TestTotals(t *testing.T) {
	for _, tc := range []struct {
		sent, recv int64
		d          time.Duration
		want       string
	}{
		{1 << 30, 12, 2300 * time.Millisecond, "sent 1.0 GiB, received 12 B in 2.3s (445 MiB/s)"},
		{0, 0, 0, "sent 0 B, received 0 B in 0s"},
		{100, 0, 450 * time.Millisecond, "sent 100 B, received 0 B in 450ms (222 B/s)"},
		{1536, 1 << 20, 185 * time.Second, "sent 1.5 KiB, received 1.0 MiB in 3m5s (5.5 KiB/s)"},
	} {
		if got := Totals(tc.sent, tc.recv, tc.d); got != tc.want {
			t.Errorf("Totals(%d, %d, %v) = %q, want %q", tc.sent, tc.recv, tc.d, got, tc.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		99*1024 + 1000: "100 KiB", 450 << 20: "450 MiB", 1<<30 + 1<<29: "1.5 GiB",
		1 << 40: "1.0 TiB", 1<<63 - 1: "8.0 EiB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// A log line written while the live line shows starts on a blank line,
// and the live line comes back below it (issue 15, defect 5).
func TestAboveBlanksTheLine(t *testing.T) {
	m, buf, clk := newFake(true)
	clk.advance(2 * time.Second)
	m.Received().Add(1 << 20) // draws "1.0 MiB  ..."
	if !strings.Contains(buf.String(), "1.0 MiB") {
		t.Fatalf("no live line drawn: %q", buf.String())
	}
	io.WriteString(m.Above(buf), "wirecat: conn 2 open\n")
	out := buf.String()
	i := strings.Index(out, "wirecat:")
	if i < 1 || out[i-1] != '\r' || !strings.HasSuffix(strings.TrimRight(out[:i-1], " "), "\r") {
		t.Fatalf("the log line does not start on a blanked line: %q", out)
	}
	clk.advance(time.Second)
	m.Received().Add(1 << 20)
	if !strings.HasSuffix(buf.String(), "2.0 MiB  1.0 MiB/s") && !strings.Contains(buf.String()[i:], "2.0 MiB") {
		t.Fatalf("the live line was not redrawn below the log line: %q", buf.String())
	}
	m.Done()
	n := buf.Len()
	io.WriteString(m.Above(buf), "x")
	if buf.Len() != n+1 {
		t.Fatalf("after Done, Above adds nothing: %q", buf.String()[n:])
	}
	if w := (&Meter{}).Above(buf); w != io.Writer(buf) {
		t.Fatal("a disabled meter should return the writer itself")
	}
}
