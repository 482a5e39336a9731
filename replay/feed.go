package replay

import (
	"context"
	"sync"
)

// feed hands a player its conversation's recorded messages in order, from
// memory (a loaded Script) or as the recording is read (Stream).
type feed interface {
	// peek returns the next message without taking it; false once the
	// conversation has no more (its Conv's close fields are then final).
	peek(ctx context.Context) (*Msg, bool, error)
	// take moves past the message peek returned.
	take()
}

// sliceFeed feeds a conversation held in memory.
type sliceFeed struct {
	msgs []Msg
	i    int
}

func (f *sliceFeed) peek(context.Context) (*Msg, bool, error) {
	if f.i >= len(f.msgs) {
		return nil, false, nil
	}
	return &f.msgs[f.i], true, nil
}

func (f *sliceFeed) take() { f.i++ }

// queueFeed is a conversation's messages on their way from the reader of
// the recording to the player: a queue bounded in bytes, so a recording of
// any size replays in the memory of what is in flight.
type queueFeed struct {
	pool  *feedPool
	msgs  []Msg
	head  int
	bytes int
	limit int // bytes held before put waits; 0: no limit (put never waits)
	// pending: the connection does not play yet (its time has not come,
	// or no descriptor is free). put never waits on it (the playing ones
	// may need what follows in the recording) and its bytes count in the
	// pool's pending, not its bytes, until play.
	pending bool
	ended   bool // no more messages will come
	err     error
	wake    chan struct{} // pinged on every put and end, for peek's ctx
	closed  bool          // the player is gone: put stops waiting
}

// feedPool is what the feeds of one replay share: a lock, and a bound on
// the bytes they hold together.
type feedPool struct {
	mu    sync.Mutex
	cond  *sync.Cond
	bytes int // held by playing feeds with a limit
	limit int
	// pending is held by pending feeds: bounded by admit, which the reader
	// of the recording calls after each put.
	pending int
	// starved: a connection is due but waits for a descriptor, so pending
	// bytes may not drain until one closes (admit then fails).
	starved bool
}

const (
	// feedLimit is what one conversation's queue holds before the reader
	// of the recording waits for its player; at least one message always
	// fits.
	feedLimit = 1 << 20
	// poolLimit is what the queues of all conversations hold together
	// before the reader waits (an empty queue still takes one message).
	poolLimit = 16 << 20
)

func newFeedPool() *feedPool {
	p := &feedPool{limit: poolLimit}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *feedPool) newFeed(limit int) *queueFeed {
	return &queueFeed{pool: p, limit: limit, wake: make(chan struct{}, 1)}
}

// newPendingFeed is a feed for a connection that does not play yet: see
// queueFeed.pending. play makes it a feed of feedLimit.
func (p *feedPool) newPendingFeed() *queueFeed {
	return &queueFeed{pool: p, pending: true, wake: make(chan struct{}, 1)}
}

// count adds n bytes to the pool's count the feed belongs in; the pool's
// lock is held.
func (f *queueFeed) count(n int) {
	switch {
	case f.pending:
		f.pool.pending += n
	case f.limit > 0:
		f.pool.bytes += n
	}
}

func (f *queueFeed) ping() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// full reports whether put must wait; the pool's lock is held.
func (f *queueFeed) full() bool {
	if f.pending || f.limit <= 0 || f.head == len(f.msgs) || f.closed {
		return false
	}
	return f.bytes >= f.limit || f.pool.bytes >= f.pool.limit
}

// put adds m, waiting while the queue (or all of them together) is over
// its limit; false when the player is gone.
func (f *queueFeed) put(m Msg) bool {
	p := f.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	for f.full() {
		p.cond.Wait()
	}
	if f.closed {
		return false
	}
	if f.head > 0 && f.head == len(f.msgs) {
		f.msgs, f.head = f.msgs[:0], 0
	}
	f.msgs = append(f.msgs, m)
	n := len(m.Data) + len(m.Wire)
	f.bytes += n
	f.count(n)
	f.ping()
	return true
}

// play moves a pending feed's bytes to the pool's playing ones: its
// connection plays now, and put waits on it past feedLimit.
func (f *queueFeed) play() {
	p := f.pool
	p.mu.Lock()
	if f.pending && !f.closed {
		p.pending -= f.bytes
		f.pending, f.limit = false, feedLimit
		p.bytes += f.bytes
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// setStarved says whether a due connection waits for a descriptor.
func (p *feedPool) setStarved(b bool) {
	p.mu.Lock()
	p.starved = b
	p.cond.Broadcast()
	p.mu.Unlock()
}

// admit bounds what the pending feeds hold together: past limit, the
// reader of the recording waits for connections to start playing (their
// time comes), unless one waits for a descriptor: then the bytes may never
// drain, and admit says so (false). It also returns when ctx ends.
func (p *feedPool) admit(ctx context.Context, limit int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending <= limit {
		return true
	}
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	for p.pending > limit && !p.starved && ctx.Err() == nil {
		p.cond.Wait()
	}
	return p.pending <= limit || !p.starved
}

// gone reports whether the player left (stop).
func (f *queueFeed) gone() bool {
	f.pool.mu.Lock()
	defer f.pool.mu.Unlock()
	return f.closed
}

// end says no more messages will come (err: the recording is damaged).
func (f *queueFeed) end(err error) {
	f.pool.mu.Lock()
	f.ended, f.err = true, err
	f.pool.mu.Unlock()
	f.ping()
}

// stop is the player leaving: what it did not take is dropped and a
// waiting put returns.
func (f *queueFeed) stop() {
	p := f.pool
	p.mu.Lock()
	if !f.closed {
		f.count(-f.bytes)
	}
	f.closed = true
	f.msgs, f.head, f.bytes = nil, 0, 0
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (f *queueFeed) peek(ctx context.Context) (*Msg, bool, error) {
	for {
		f.pool.mu.Lock()
		if f.head < len(f.msgs) {
			m := f.msgs[f.head]
			f.pool.mu.Unlock()
			return &m, true, nil
		}
		if f.ended {
			f.pool.mu.Unlock()
			return nil, false, f.err
		}
		f.pool.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-f.wake:
		}
	}
}

func (f *queueFeed) take() {
	p := f.pool
	p.mu.Lock()
	m := &f.msgs[f.head]
	n := len(m.Data) + len(m.Wire)
	f.bytes -= n
	f.count(-n)
	*m = Msg{}
	f.head++
	p.cond.Broadcast()
	p.mu.Unlock()
}
