// Package progress shows how a transfer is going: a live line on stderr
// (bytes so far and the current rate) while a transfer runs on a terminal,
// and a line of totals for -v when it ends.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults: a line appears only for transfers that last, and is redrawn at
// most four times a second so it costs nothing next to the copy itself.
const (
	DefaultDelay    = time.Second
	DefaultInterval = 250 * time.Millisecond
)

// Meter counts the bytes of one transfer, both ways, and draws the live
// line. Its methods are safe for concurrent use; a nil *Meter counts
// nothing and prints nothing, so callers need no checks.
type Meter struct {
	w       io.Writer
	enabled bool
	now     func() time.Time

	// Delay is how long a transfer runs before the line appears;
	// Interval is the shortest time between two redraws.
	Delay, Interval time.Duration

	sent, recv atomic.Int64
	next       atomic.Int64 // unix nanos before which Add does not even lock

	mu       sync.Mutex
	start    time.Time
	last     time.Time // when the line was last drawn
	lastN    int64     // bytes at that time
	rate     float64   // smoothed bytes per second
	width    int       // length of the line on screen, to blank it
	sampled  bool      // the rate has its first sample
	finished bool
	end      time.Time
}

// New returns a meter that draws on w when enabled (stderr is a terminal
// and the user did not ask for quiet); a disabled meter still counts, for
// Totals.
func New(w io.Writer, enabled bool) *Meter {
	return NewClock(w, enabled, time.Now)
}

// NewClock is New with the clock to read, for tests.
func NewClock(w io.Writer, enabled bool, now func() time.Time) *Meter {
	m := &Meter{w: w, enabled: enabled, now: now, Delay: DefaultDelay, Interval: DefaultInterval}
	m.start = now()
	m.last = m.start
	m.next.Store(m.start.Add(m.Delay).UnixNano())
	return m
}

// Counter is one direction of a meter.
type Counter struct {
	m *Meter
	n *atomic.Int64
}

// Add records n bytes moved, and redraws the line when it is time.
func (c Counter) Add(n int) {
	if c.m == nil {
		return
	}
	after := c.n.Add(int64(n))
	if (after-int64(n))>>16 != after>>16 {
		c.m.tick() // a clock read per 64 KiB moved, not per message
	}
}

// Sent counts bytes written to the peer.
func (m *Meter) Sent() Counter {
	if m == nil {
		return Counter{}
	}
	return Counter{m, &m.sent}
}

// Received counts bytes read from the peer.
func (m *Meter) Received() Counter {
	if m == nil {
		return Counter{}
	}
	return Counter{m, &m.recv}
}

// Writer wraps w so that what is written through it counts on c: a
// transfer path that is an io.Copy needs no other change.
func (c Counter) Writer(w io.Writer) io.Writer { return countingWriter{w, c} }

type countingWriter struct {
	w io.Writer
	c Counter
}

func (cw countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.c.Add(n)
	return n, err
}

// Bytes returns the bytes counted so far, each way.
func (m *Meter) Bytes() (sent, received int64) {
	if m == nil {
		return 0, 0
	}
	return m.sent.Load(), m.recv.Load()
}

// tick redraws the line if the transfer is old enough and the last
// redraw long enough ago. The fast path is one clock read and one load.
func (m *Meter) tick() {
	if !m.enabled {
		return
	}
	now := m.now()
	if now.UnixNano() < m.next.Load() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.finished || now.UnixNano() < m.next.Load() {
		return
	}
	m.next.Store(now.Add(m.Interval).UnixNano())
	total := m.sent.Load() + m.recv.Load()
	if dt := now.Sub(m.last).Seconds(); dt > 0 {
		r := float64(total-m.lastN) / dt
		if !m.sampled {
			m.rate = r // the first sample: the average since the start
			m.sampled = true
		} else {
			m.rate = 0.5*m.rate + 0.5*r // smooth bursts without lagging far
		}
	}
	m.last, m.lastN = now, total
	line := fmt.Sprintf("%s  %s/s", FormatBytes(total), FormatBytes(int64(m.rate)))
	pad := ""
	if len(line) < m.width {
		pad = strings.Repeat(" ", m.width-len(line))
	}
	m.width = len(line)
	fmt.Fprintf(m.w, "\r%s%s", line, pad)
}

// Done ends the transfer: it blanks the line if one was drawn, so what
// stderr says next starts on a clean line. Calling it again does nothing.
func (m *Meter) Done() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.finished {
		return
	}
	m.finished = true
	if m.width > 0 {
		fmt.Fprintf(m.w, "\r%s\r", strings.Repeat(" ", m.width))
	}
	m.end = m.now()
}

// Elapsed is how long the transfer ran (until Done, if it was called).
func (m *Meter) Elapsed() time.Duration {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.finished {
		return m.end.Sub(m.start)
	}
	return m.now().Sub(m.start)
}

// Totals is the -v closing line for this transfer.
func (m *Meter) Totals() string {
	s, r := m.Bytes()
	return Totals(s, r, m.Elapsed())
}

// Totals reads: sent 1.0 GiB, received 12 B in 2.3s (445 MiB/s). The rate
// counts both directions.
func Totals(sent, received int64, d time.Duration) string {
	rate := ""
	if d > 0 {
		rate = fmt.Sprintf(" (%s/s)", FormatBytes(int64(float64(sent+received)/d.Seconds())))
	}
	return fmt.Sprintf("sent %s, received %s in %s%s", FormatBytes(sent), FormatBytes(received), FormatDuration(d), rate)
}

// FormatBytes prints n bytes for a person: 12 B, 1.5 KiB, 450 MiB. Three
// significant digits at most, so the live line does not jitter in width.
func FormatBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	unit := -1
	for v >= 1024 && unit < 5 {
		v /= 1024
		unit++
	}
	name := [...]string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}[unit]
	if v < 99.95 {
		return fmt.Sprintf("%.1f %s", v, name)
	}
	return fmt.Sprintf("%.0f %s", v, name)
}

// FormatDuration rounds d to what a person wants to read: 2.3s, 450ms, 3m5s.
func FormatDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.String()
}

// Above returns a writer for the messages that share the meter's terminal
// (the -v log): each write first blanks the live line, so a message never
// starts right after "18.8 MiB  4.1 MiB/s", and the next redraw puts the
// line back below it at its usual time. A disabled meter returns w itself.
func (m *Meter) Above(w io.Writer) io.Writer {
	if m == nil || !m.enabled {
		return w
	}
	return aboveWriter{m, w}
}

type aboveWriter struct {
	m *Meter
	w io.Writer
}

func (a aboveWriter) Write(p []byte) (int, error) {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	if a.m.width > 0 && !a.m.finished {
		fmt.Fprintf(a.m.w, "\r%s\r", strings.Repeat(" ", a.m.width))
		a.m.width = 0
	}
	return a.w.Write(p)
}
