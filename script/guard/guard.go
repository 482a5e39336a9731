// Package guard keeps wirecat's Lua scripts inside their bounds: a time
// budget per call, a cap on the memory Lua may hold, cancellation by a
// signal, and the restricted libraries every script gets (devices, relay
// hooks and lua: framers alike).
//
// gopher-lua has neither an instruction hook nor an allocator hook. What it
// has is a context per state, checked before every VM instruction. So each
// Lua state owns a Slot: a context the guard may cancel, and the time its
// current call started. One watchdog goroutine looks at every slot a few
// times per budget and cancels a call that ran too long; it also reads the Go
// heap and, when the heap crosses the memory cap, cancels the Lua that is the
// likely cause (see victim). Library functions that could make a huge string
// in one Go call (string.rep, table.concat, string.format, string.gsub) are
// bounded beforehand, since the VM cannot interrupt a Go function.
package guard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// Limits are the bounds of every Lua state of the process.
type Limits struct {
	// Timeout bounds one call of a lua: framer (decode, encode, finish); 0
	// means no budget.
	Timeout time.Duration
	// HookTimeout bounds one relay hook call; 0 means no budget.
	HookTimeout time.Duration
	// DeviceTimeout bounds a device's run between two waits; 0 means none:
	// a device has a goroutine of its own and stops at --duration.
	DeviceTimeout time.Duration
	// Memory caps the Go heap while Lua runs; 0 means no cap.
	Memory int64
	// Unsafe opens the whole os and io libraries and dofile, loadfile and
	// require to every script.
	Unsafe bool
	// Context ends every hook and framer call when it is done (SIGINT,
	// SIGTERM); nil never ends them. Devices run under their own.
	Context context.Context
}

const (
	// DefaultTimeout: a framer runs once per message, in the path of the
	// traffic; 100ms is thousands of times what such a call needs (a few
	// microseconds to a millisecond). A framer call runs in a state of its
	// own, so the others are not held up meanwhile.
	DefaultTimeout = 100 * time.Millisecond
	// DefaultHookTimeout is shorter: the hooks of every connection share one
	// state, so while a call runs the other connections wait for it. 20ms
	// (30 at worst with the watchdog's tick) keeps a runaway a blip for them,
	// and is still hundreds of times what a hook needs.
	DefaultHookTimeout = 20 * time.Millisecond
	// DefaultMemory: 1 GiB holds 10,000 devices with room to spare and stops
	// a memory bomb long before it takes a laptop's memory.
	DefaultMemory = 1 << 30
	// tick is how often the watchdog looks: a tenth of the default budget,
	// and fast enough to see a heap growing at GB/s before it doubles.
	tick = 10 * time.Millisecond
	// maxStringCap bounds one string made by a bounded library function:
	// wirecat's messages are 1 MiB by default; a 64 MiB string is a mistake.
	maxStringCap = 64 << 20
)

var (
	limitsMu sync.RWMutex
	limits   = Limits{Timeout: DefaultTimeout, HookTimeout: DefaultHookTimeout, Memory: DefaultMemory}
)

// Set replaces the process's limits. Call it before any script is loaded.
func Set(l Limits) {
	limitsMu.Lock()
	limits = l
	limitsMu.Unlock()
}

// softLimit makes the memory cap the Go runtime's soft memory limit (unless
// GOMEMLIMIT is set), so the collector works harder as the heap nears the
// cap instead of letting garbage reach it. It is set when the first Lua
// state is, so a command that runs no Lua is not touched.
func softLimit() {
	if m := Current().Memory; m > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(m)
	}
}

// Current returns the process's limits.
func Current() Limits {
	limitsMu.RLock()
	defer limitsMu.RUnlock()
	return limits
}

// MaxString is the longest string a bounded library function makes: a
// quarter of the memory cap, at most 64 MiB.
func MaxString() int {
	m := Current().Memory
	if m <= 0 || m/4 > maxStringCap {
		return maxStringCap
	}
	return int(m / 4)
}

// ErrStopped is the error of a call cancelled because its context ended
// (the process is ending on SIGINT or SIGTERM, the device was stopped).
var ErrStopped = errors.New("stopped")

// LimitError says which bound stopped a script.
type LimitError struct {
	Script string
	Memory bool          // the memory cap; otherwise the time budget
	Budget time.Duration // the time budget that ran out
	Cap    int64         // the memory cap
	Heap   int64         // the heap when the cap was crossed
	Device bool          // a device's run between two waits
}

func (e *LimitError) Error() string { return e.Script + ": " + e.Reason() }

// Reason is the message without the script's name.
func (e *LimitError) Reason() string {
	switch {
	case e.Memory:
		return fmt.Sprintf("stopped: the heap reached %s, over the Lua memory cap of %s (--lua-memory)", mib(e.Heap), mib(e.Cap))
	case e.Device:
		return fmt.Sprintf("ran %v without waiting (sleep, recv...), its budget (--lua-timeout)", e.Budget)
	}
	return fmt.Sprintf("still running after %v, its budget (--lua-timeout)", e.Budget)
}

func mib(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", (n+1<<20-1)>>20) // rounded up: over a cap of 256 MiB is 257
}

// fastDone is a context whose Done is a field read: gopher-lua calls Done
// before every VM instruction, and a cancelCtx's Done (an atomic load and a
// type assertion) costs a framer a third of its speed.
type fastDone struct {
	context.Context
	done <-chan struct{}
}

func (c fastDone) Done() <-chan struct{} { return c.done }

func newCtx(parent context.Context) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	return fastDone{ctx, ctx.Done()}, cancel
}

// A Slot is one Lua state's place under the watchdog. Its owner calls Enter
// before running Lua and Leave after, on the state's own goroutine.
type Slot struct {
	name   string
	parent context.Context
	kind   kind

	mu     sync.Mutex // guards ctx and cancel against the watchdog
	ctx    context.Context
	cancel context.CancelCauseFunc

	since atomic.Int64  // unix nanoseconds the current call started; 0 when idle
	seq   atomic.Uint64 // counts calls: the watchdog stops only the call it saw
	over  atomic.Int64  // the current call's own budget (EnterWith); 0: the kind's
	made  atomic.Int64  // bytes of strings made by the bounded functions lately
}

var (
	slotsMu sync.Mutex
	slots   = map[*Slot]struct{}{}
	list    []*Slot // slots as a slice, rebuilt when they change
	dirty   bool
	running bool // the watchdog goroutine is running
)

// NewSlot registers a state named name (the script, as messages show it).
// Its context derives from parent, or from Limits.Context when parent is
// nil. Close it when the state is closed.
func NewSlot(parent context.Context, name string) *Slot { return newSlot(parent, name, callKind) }

// kind is what a slot's state runs, which says its time budget.
type kind int

const (
	callKind   kind = iota // a framer: Limits.Timeout
	hookKind               // relay hooks: Limits.HookTimeout
	deviceKind             // a device: Limits.DeviceTimeout, a run between two waits
)

func newSlot(parent context.Context, name string, k kind) *Slot {
	if parent == nil {
		parent = Current().Context
	}
	if parent == nil {
		parent = context.Background()
	}
	s := &Slot{name: name, parent: parent, kind: k}
	s.ctx, s.cancel = newCtx(parent)
	slotsMu.Lock()
	slots[s] = struct{}{}
	dirty = true
	if !running {
		running = true
		softLimit()
		go watch()
	}
	slotsMu.Unlock()
	return s
}

// NewHookSlot is NewSlot for relay hooks: its budget is HookTimeout.
func NewHookSlot(name string) *Slot { return newSlot(nil, name, hookKind) }

// NewDeviceSlot is NewSlot for a device: its time budget is DeviceTimeout,
// and it measures a run between two waits.
func NewDeviceSlot(parent context.Context, name string) *Slot {
	return newSlot(parent, name, deviceKind)
}

// Context is what the state must run under (lua.LState.SetContext).
func (s *Slot) Context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctx
}

// Enter marks the start of a call.
func (s *Slot) Enter() {
	s.seq.Add(1)
	s.since.Store(time.Now().UnixNano())
}

// EnterWith marks the start of a call whose budget is d instead of the
// slot's own, when the slot has a budget at all: a hook script's top level,
// which runs once before any traffic.
func (s *Slot) EnterWith(d time.Duration) {
	s.over.Store(int64(d))
	s.Enter()
}

// Leave marks its end and returns why the slot was cancelled, if it was: a
// *LimitError or ErrStopped.
func (s *Slot) Leave() error {
	// Under mu: the watchdog checks that the call it found late still runs
	// and cancels it under mu too, so its cancel never lands after this
	// call ended, on the next one (another connection's hook, or a pooled
	// framer's next Decode).
	s.mu.Lock()
	s.since.Store(0)
	s.over.Store(0)
	s.mu.Unlock()
	return s.Err()
}

// Err is why the slot's context was cancelled, nil while it is not.
func (s *Slot) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() == nil {
		return nil
	}
	var le *LimitError
	if errors.As(context.Cause(s.ctx), &le) {
		return le
	}
	return ErrStopped
}

// Reset gives the slot a fresh context after a cancelled call, for a state
// that goes on serving (a relay's hooks). It returns the new context.
func (s *Slot) Reset() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil && s.parent.Err() == nil {
		s.ctx, s.cancel = newCtx(s.parent)
	}
	return s.ctx
}

// Made counts n bytes of a string a bounded function made for this slot:
// the memory watchdog's hint of who is filling the heap.
func (s *Slot) Made(n int) {
	if s != nil {
		s.made.Add(int64(n))
	}
}

// Close unregisters the slot and cancels its context.
func (s *Slot) Close() {
	slotsMu.Lock()
	delete(slots, s)
	dirty = true
	slotsMu.Unlock()
	s.stop(context.Canceled)
}

func (s *Slot) stop(cause error) {
	s.mu.Lock()
	s.cancel(cause)
	s.mu.Unlock()
}

// late says whether the current call is over budget at now, and which call
// it is (for stopCall).
func (s *Slot) late(now time.Time, budget time.Duration) (uint64, bool) {
	seq := s.seq.Load()
	since := s.since.Load()
	return seq, since != 0 && budget > 0 && now.UnixNano()-since > int64(budget)
}

// stopCall cancels call seq if it is still running: not a later one that
// started after it left.
func (s *Slot) stopCall(seq uint64, cause error) {
	s.mu.Lock()
	if s.seq.Load() == seq && s.since.Load() != 0 {
		s.cancel(cause)
	}
	s.mu.Unlock()
}

// watch is the watchdog: every tick it stops the calls over their budget and
// checks the heap against the cap. It ends when no slot is left.
func watch() {
	t := time.NewTicker(tick)
	defer t.Stop()
	var cool time.Time // after a memory kill, give the collector time
	for range t.C {
		slotsMu.Lock()
		if len(slots) == 0 {
			running = false
			slotsMu.Unlock()
			return
		}
		if dirty { // a fresh slice: the last one may still be read below
			list = make([]*Slot, 0, len(slots))
			for s := range slots {
				list = append(list, s)
			}
			dirty = false
		}
		live := list
		slotsMu.Unlock()
		l := Current()
		now := time.Now()
		for _, s := range live {
			budget := l.Timeout
			switch s.kind {
			case hookKind:
				budget = l.HookTimeout
			case deviceKind:
				budget = l.DeviceTimeout
			}
			if over := time.Duration(s.over.Load()); over > 0 && budget > 0 {
				budget = over
			}
			if seq, late := s.late(now, budget); late {
				s.stopCall(seq, &LimitError{Script: s.name, Budget: budget, Device: s.kind == deviceKind})
			}
		}
		if l.Memory > 0 && now.After(cool) {
			if memoryCheck(live, l.Memory) {
				cool = now.Add(10 * tick)
			}
		}
	}
}

// heapSample reads the bytes of live and not yet swept heap objects: cheap
// (no stop-the-world) and current.
var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

var heapMu sync.Mutex

// forcedGCEvery spaces the collections memoryCheck forces; lastForcedGC is
// the last one (read and written by the watchdog goroutine only).
const forcedGCEvery = time.Second

var lastForcedGC time.Time

// Heap returns the bytes held by heap objects now.
func Heap() int64 {
	heapMu.Lock()
	defer heapMu.Unlock()
	metrics.Read(heapSample)
	if heapSample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(heapSample[0].Value.Uint64())
}

// memoryCheck stops the likely culprit when the heap is over the cap, and
// says whether it acted (the watchdog then lets the collector catch up).
// A state that has been running for a while is stopped at once: a bomb
// allocates fast, and a forced collection of a big heap takes long enough
// for it to double. Otherwise garbage is collected first, so that only what
// is still held counts.
func memoryCheck(live []*Slot, limit int64) bool {
	heap := Heap()
	if heap <= limit {
		return false
	}
	v, seq := longest(live)
	if v == nil {
		// A forced collection stops the world's allocations for a while:
		// while the heap stays over the cap with no Lua to blame (it is
		// the process's own), once per forcedGCEvery, not every check.
		if now := time.Now(); now.Sub(lastForcedGC) >= forcedGCEvery {
			lastForcedGC = now
			runtime.GC()
			if heap = Heap(); heap <= limit {
				return true
			}
		}
		v = biggest(live)
		if v == nil {
			return true // the heap is not Lua's: nothing to stop
		}
		v.stop(&LimitError{Script: v.name, Memory: true, Cap: limit, Heap: heap})
	} else {
		v.stopCall(seq, &LimitError{Script: v.name, Memory: true, Cap: limit, Heap: heap})
	}
	for _, s := range live {
		s.made.Store(0)
	}
	return true
}

// longest is the state whose current call started first, at least a tick
// ago: a memory bomb is a loop that allocates, so it is running right now
// and has been for a while.
func longest(live []*Slot) (*Slot, uint64) {
	var best *Slot
	var seq uint64
	first := time.Now().Add(-tick).UnixNano()
	for _, s := range live {
		n := s.seq.Load()
		if since := s.since.Load(); since != 0 && since < first {
			best, first, seq = s, since, n
		}
	}
	return best, seq
}

// biggest is the state whose bounded functions made the most bytes since
// the last kill, for a script that piles memory up a little per call.
// Tables and `..` escape that count: a script that grows a table a little
// per call and never runs long is not found, and the cap is then a soft
// limit only (the runtime's memory limit makes the collector work harder;
// it does not fail).
func biggest(live []*Slot) *Slot {
	var best *Slot
	var most int64 = 1 << 20 // below a MiB made, nobody is to blame
	for _, s := range live {
		if m := s.made.Load(); m > most {
			best, most = s, m
		}
	}
	return best
}
