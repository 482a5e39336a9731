package output

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// ErrAborted is returned by a Drain's writes once Abort was called: what
// was still waiting for the writer is abandoned.
var ErrAborted = errors.New("stdout abandoned: it was not draining")

// DefaultDrainLimit is how many bytes a Drain holds for its writer.
const DefaultDrainLimit = 1 << 20

// Drain writes to w from a goroutine of its own, so that a writer that
// stops draining (stdout into a paused pager, a pipe nobody reads) holds up
// only those who choose to wait for it:
//
//   - Write queues p and returns; it waits only while the queue is full
//     (back-pressure for a data sink), and no longer once Abort was called.
//   - TryWrite queues p whole or not at all and never waits (a view, which
//     drops what stdout cannot take). Like Write, it takes a p larger than
//     the limit when the queue is empty, so one large message does not
//     stay out of a view that keeps up.
//
// Queued bytes go out when Flush is called or the queue passes a quarter of
// its limit, so a burst of small writes becomes one write(2). A write that
// is stuck in the kernel cannot be interrupted: Abort stops every wait for
// it and the process can exit while its goroutine stays blocked.
type Drain struct {
	w     io.Writer
	limit int

	mu      sync.Mutex
	cond    *sync.Cond
	buf     []byte // queued, not yet handed to the writer
	over    int    // buf starts with a write larger than limit, of this size
	spare   []byte // the writer's last buffer, kept for reuse
	writing bool   // the writer is inside w.Write
	kicked  bool   // Flush asked for what is queued to go out
	started bool   // the writer goroutine runs
	closed  bool   // Close was called: the writer stops once idle
	aborted bool
	err     error // sticky: the first write error
	dropped int64 // TryWrite calls refused

	// writes counts the writes done: a view that found no room can tell,
	// without the lock, that there is still none.
	writes atomic.Int64
}

// NewDrain returns a Drain over w holding at most limit bytes (0: the
// default). A single write larger than limit is queued whole when the queue
// is empty.
func NewDrain(w io.Writer, limit int) *Drain {
	if limit <= 0 {
		limit = DefaultDrainLimit
	}
	d := &Drain{w: w, limit: limit}
	d.cond = sync.NewCond(&d.mu)
	return d
}

// Write queues p, waiting while the queue is full. It fails with the first
// error of the underlying writer, or ErrAborted after Abort.
func (d *Drain) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		if d.aborted {
			return 0, ErrAborted
		}
		if d.err != nil {
			return 0, d.err
		}
		if d.closed {
			return 0, io.ErrClosedPipe
		}
		if d.roomLocked(len(p)) {
			break
		}
		d.kickLocked() // full: let it go out, and wait for room
		d.cond.Wait()
	}
	d.queueLocked(p)
	return len(p), nil
}

// TryWrite queues p whole if it fits, or if nothing is queued, and reports
// whether it did. It never waits: a refused p is counted in Dropped.
func (d *Drain) TryWrite(p []byte) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.fitsLocked(len(p)) {
		d.dropped++
		return false
	}
	d.queueLocked(p)
	return true
}

// Free is how many bytes TryWrite would take now.
func (d *Drain) Free() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.aborted || d.err != nil || d.closed {
		return 0
	}
	return d.limit - (len(d.buf) - d.over)
}

// Fits reports whether TryWrite would take n bytes now.
func (d *Drain) Fits(n int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fitsLocked(n)
}

func (d *Drain) fitsLocked(n int) bool {
	if d.aborted || d.err != nil || d.closed {
		return false
	}
	return d.roomLocked(n)
}

// roomLocked reports whether n more bytes fit in the queue: within the
// limit, not counting a write larger than the limit that heads the queue
// (it is on its way to the writer; what follows it must not wait until the
// writer takes it), or alone in an empty queue; d.mu is held.
func (d *Drain) roomLocked(n int) bool {
	return len(d.buf) == 0 || len(d.buf)-d.over+n <= d.limit
}

// queueLocked appends p to the queue; d.mu is held.
func (d *Drain) queueLocked(p []byte) {
	if len(d.buf) == 0 && len(p) > d.limit {
		d.over = len(p)
	}
	d.buf = append(d.buf, p...)
	if len(d.buf) >= d.limit/4 {
		d.kickLocked()
	}
}

// Limit is how many bytes the Drain holds; a single write may be larger.
func (d *Drain) Limit() int { return d.limit }

// Writes is how many writes the writer has done: while it stays the same,
// Free does not grow.
func (d *Drain) Writes() int64 { return d.writes.Load() }

// Dropped is how many TryWrite calls were refused.
func (d *Drain) Dropped() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dropped
}

// Flush hands what is queued to the writer without waiting for it. It
// returns the first write error so far.
func (d *Drain) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.buf) > 0 {
		d.kickLocked()
	}
	if d.aborted {
		return ErrAborted
	}
	return d.err
}

// Sync waits until everything queued was written, a write failed, or
// Abort was called.
func (d *Drain) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for !d.aborted && d.err == nil && (len(d.buf) > 0 || d.writing) {
		d.kickLocked()
		d.cond.Wait()
	}
	switch {
	case d.err != nil:
		return d.err
	case d.aborted && (len(d.buf) > 0 || d.writing):
		return ErrAborted
	}
	return nil
}

// Close writes out what is queued (see Sync) and stops the writer; later
// writes fail.
func (d *Drain) Close() error {
	err := d.Sync()
	d.mu.Lock()
	d.closed = true
	d.cond.Broadcast()
	d.mu.Unlock()
	return err
}

// Abort gives up on the writer: every wait returns at once, later writes
// fail, and what is queued is never written. The goroutine of a write
// stuck in the kernel stays blocked until the process exits.
func (d *Drain) Abort() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.aborted = true
	d.cond.Broadcast()
}

// kickLocked wakes the writer (starting it the first time); d.mu is held.
func (d *Drain) kickLocked() {
	d.kicked = true
	if d.writing {
		return // the writer looks at the queue again when its write returns
	}
	if !d.started {
		d.started = true
		go d.run()
	}
	d.cond.Broadcast()
}

// run is the writer goroutine: it takes everything queued and writes it
// with one call, until Close or Abort.
func (d *Drain) run() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		for !d.aborted && !d.closed && d.err == nil && !(d.kicked && len(d.buf) > 0) {
			d.cond.Wait()
		}
		if d.aborted || d.closed || d.err != nil {
			return
		}
		out := d.buf
		d.buf, d.spare, d.over = d.spare[:0], nil, 0
		d.kicked = false
		d.writing = true
		d.mu.Unlock()
		_, err := d.w.Write(out)
		d.writes.Add(1)
		d.mu.Lock()
		d.writing = false
		if err != nil && d.err == nil {
			d.err = err
		}
		if cap(out) <= 2*d.limit {
			d.spare = out[:0] // one oversized write grew it: let it go
		}
		d.cond.Broadcast()
	}
}
