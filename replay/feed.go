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
	mu     sync.Mutex
	cond   *sync.Cond
	msgs   []Msg
	head   int
	bytes  int
	limit  int  // bytes held before put waits; 0: no limit (put never waits)
	ended  bool // no more messages will come
	err    error
	wake   chan struct{} // pinged on every put and end, for peek's ctx
	closed chan struct{} // closed when the player is gone: put stops waiting
}

// feedLimit is what one conversation's queue holds before the reader of
// the recording waits for the player: at least one message always fits.
const feedLimit = 1 << 20

func newQueueFeed(limit int) *queueFeed {
	f := &queueFeed{limit: limit, wake: make(chan struct{}, 1), closed: make(chan struct{})}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *queueFeed) ping() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// put adds m, waiting while the queue is over its limit; false when the
// player is gone.
func (f *queueFeed) put(m Msg) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.limit > 0 && f.bytes >= f.limit && len(f.msgs) > f.head && !f.gone() {
		f.cond.Wait()
	}
	if f.gone() {
		return false
	}
	if f.head > 0 && f.head == len(f.msgs) {
		f.msgs, f.head = f.msgs[:0], 0
	}
	f.msgs = append(f.msgs, m)
	f.bytes += len(m.Data) + len(m.Wire)
	f.ping()
	return true
}

// held is how many bytes wait in the queue.
func (f *queueFeed) held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bytes
}

// setLimit changes the limit (a conversation that starts playing gets one).
func (f *queueFeed) setLimit(n int) {
	f.mu.Lock()
	f.limit = n
	f.cond.Broadcast()
	f.mu.Unlock()
}

func (f *queueFeed) gone() bool {
	select {
	case <-f.closed:
		return true
	default:
		return false
	}
}

// end says no more messages will come (err: the recording is damaged).
func (f *queueFeed) end(err error) {
	f.mu.Lock()
	f.ended, f.err = true, err
	f.mu.Unlock()
	f.ping()
}

// stop is the player leaving: a waiting put returns.
func (f *queueFeed) stop() {
	f.mu.Lock()
	select {
	case <-f.closed:
	default:
		close(f.closed)
	}
	f.msgs, f.head, f.bytes = nil, 0, 0
	f.cond.Broadcast()
	f.mu.Unlock()
}

func (f *queueFeed) peek(ctx context.Context) (*Msg, bool, error) {
	for {
		f.mu.Lock()
		if f.head < len(f.msgs) {
			m := f.msgs[f.head]
			f.mu.Unlock()
			return &m, true, nil
		}
		if f.ended {
			f.mu.Unlock()
			return nil, false, f.err
		}
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-f.wake:
		}
	}
}

func (f *queueFeed) take() {
	f.mu.Lock()
	m := &f.msgs[f.head]
	f.bytes -= len(m.Data) + len(m.Wire)
	*m = Msg{}
	f.head++
	f.cond.Broadcast()
	f.mu.Unlock()
}
