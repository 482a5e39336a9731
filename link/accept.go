package link

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Limits of the accept loop at the descriptor limit.
const (
	// acceptBackoffMax caps the pause after an accept that failed for want
	// of descriptors (or kernel memory): short enough that clients are
	// served again well within a second of descriptors freeing.
	acceptBackoffMax = 100 * time.Millisecond
	// acceptNoteEvery rate-limits the notice about the limit: a flood of
	// clients at the limit says so once in a while, not once per client.
	acceptNoteEvery = 10 * time.Second
)

// Acceptor accepts connections from a listener and survives the
// descriptor limit: where a bare Accept fails with "too many open files"
// (and a server that returns on it dies, while one that retries spins and
// leaves clients hanging in the backlog), Acceptor keeps one descriptor in
// reserve, spends it to accept and at once close the waiting client, so it
// sees the connection end rather than hang, says so (once per
// acceptNoteEvery, with a count), and waits for descriptors to free.
// It serves again as soon as they do. Safe for one accepting goroutine.
type Acceptor struct {
	ln    net.Listener
	notef func(format string, args ...any)

	mu      sync.Mutex
	spare   *os.File // the reserved descriptor; nil while spent
	noted   time.Time
	refused int // clients closed at the limit since the last notice
}

// NewAcceptor wraps ln; notef (nil: silent) prints the notice about the
// limit. Close releases the reserved descriptor.
func NewAcceptor(ln net.Listener, notef func(format string, args ...any)) *Acceptor {
	a := &Acceptor{ln: ln, notef: notef}
	a.reserve()
	return a
}

// reserve opens the spare descriptor if it is not open.
func (a *Acceptor) reserve() {
	if a.spare == nil {
		a.spare, _ = os.Open(os.DevNull) // may fail at the limit: tried again later
	}
}

// restock reopens the spare descriptor if it was spent, and reports
// whether there is one.
func (a *Acceptor) restock() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reserve()
	return a.spare != nil
}

// Close releases the reserved descriptor; it does not close the listener.
func (a *Acceptor) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reserve() // spent earlier and lost to another goroutine: descriptors may have freed since
	if a.spare != nil {
		a.spare.Close()
		a.spare = nil
	}
}

// Accept returns the next connection. It returns an error only when the
// listener is closed or fails for good (errors.Is(err, net.ErrClosed) for
// the former), or when ctx ends while it waits for descriptors.
func (a *Acceptor) Accept(ctx context.Context) (net.Conn, error) {
	backoff := time.Duration(0)
	for {
		c, err := a.ln.Accept()
		if err == nil {
			if a.restock() {
				return c, nil
			}
			// The spare is spent and this client took the last descriptor:
			// the spare matters more, or the next clients would hang.
			c.Close()
			a.mu.Lock()
			a.reserve()
			a.refused++
			a.mu.Unlock()
			continue
		}
		if !transientAccept(err) {
			return nil, err
		}
		if Exhausted(err) {
			a.shed(err)
		}
		// Let connections close before trying again; the spare (if it could
		// be spent) already answered the client at the head of the queue.
		backoff = min(max(2*backoff, time.Millisecond), acceptBackoffMax)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// shed spends the spare descriptor on the clients waiting in the backlog:
// each accepted and closed at once, they know where they stand rather than
// hang. It says so once per acceptNoteEvery.
func (a *Acceptor) shed(cause error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reserve() // lost to another goroutine earlier: descriptors may have freed since
	// Only while no dial is creating a socket, which would take the slot the
	// spare frees and leave no spare (a dial still resolving a name makes
	// the loop come back after its back-off instead of waiting).
	if a.spare != nil && fdGate.TryLock() {
		defer fdGate.Unlock()
		a.spare.Close()
		a.spare = nil
		a.refused += shedBacklog(a.ln, maxShed)
		a.reserve()
	}
	if a.notef == nil || time.Since(a.noted) < acceptNoteEvery {
		return
	}
	if a.refused > 0 {
		since := "so far"
		if !a.noted.IsZero() {
			since = "since the last notice"
		}
		a.notef("accept: %v: closing new clients until connections end (%d closed %s)", Cause(cause), a.refused, since)
	} else {
		a.notef("accept: %v: closing new clients until connections end", Cause(cause))
	}
	if a.noted.IsZero() {
		a.notef("hint: raise the descriptor limit (ulimit -n) or take fewer clients (--max-conns)")
	}
	a.noted = time.Now()
	a.refused = 0
}

// fdGate orders the sockets this package creates (dials hold it shared
// until their socket exists) with the Acceptor's shedding (exclusive), so
// the descriptor a shed frees goes to the backlog and back to the spare.
var fdGate gate

type gate struct{ sync.RWMutex }

// held is one dial's share of the gate; release is idempotent.
type held struct {
	g    *gate
	once sync.Once
}

func (g *gate) hold() *held {
	g.RLock()
	return &held{g: g}
}

func (h *held) release() { h.once.Do(h.g.RUnlock) }

// Gated runs f, which opens descriptors (a pipe, a file), so that an
// Acceptor shedding clients at the limit does not lose its spare to it.
// Dials through this package are gated already.
func Gated(f func()) {
	fdGate.RLock()
	defer fdGate.RUnlock()
	f()
}

// maxShed bounds the clients closed in one go, so the accept loop looks
// again soon at whether descriptors have freed.
const maxShed = 256

// Exhausted reports whether err is an accept, dial or open that failed for
// want of descriptors (EMFILE, ENFILE).
func Exhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// transientAccept reports whether accept may succeed if tried again: out
// of descriptors or kernel memory, or a client that left or failed before
// it was accepted.
func transientAccept(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	if Exhausted(err) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EINTR) || clientError(err) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
