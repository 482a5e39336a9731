package guard

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// withLimits sets l for one test and puts the defaults back after it.
func withLimits(t *testing.T, l Limits) {
	t.Helper()
	old := Current()
	Set(l)
	t.Cleanup(func() { Set(old) })
}

// state is a restricted state running under a fresh slot.
func state(t *testing.T, parent context.Context) (*lua.LState, *Slot) {
	t.Helper()
	L := NewState()
	s := NewSlot(parent, "t.lua")
	Attach(L, s)
	L.SetContext(s.Context())
	t.Cleanup(func() { L.Close(); s.Close() })
	return L, s
}

// call runs src in L as one guarded call.
func call(L *lua.LState, s *Slot, src string) error {
	s.Enter()
	err := L.DoString(src)
	if lerr := s.Leave(); lerr != nil {
		return lerr
	}
	return err
}

func TestTimeoutStopsASpinningCall(t *testing.T) {
	withLimits(t, Limits{Timeout: 50 * time.Millisecond})
	L, s := state(t, nil)
	start := time.Now()
	err := call(L, s, "while true do end")
	took := time.Since(start)
	var le *LimitError
	if !errors.As(err, &le) || le.Memory || le.Budget != 50*time.Millisecond {
		t.Fatalf("err = %v, want the time budget", err)
	}
	if took < 50*time.Millisecond || took > 50*time.Millisecond+slack {
		t.Errorf("stopped after %v, want 50ms plus a tick or a loaded machine's delay", took)
	}
	if !strings.Contains(err.Error(), "t.lua: still running after 50ms, its budget (--lua-timeout)") {
		t.Errorf("message %q", err)
	}
	// A state that goes on serving gets a fresh context.
	L.SetContext(s.Reset())
	if err := call(L, s, "x = 1 + 1"); err != nil {
		t.Fatalf("after Reset: %v", err)
	}
}

func TestPcallDoesNotCatchTheBudget(t *testing.T) {
	withLimits(t, Limits{Timeout: 30 * time.Millisecond})
	L, s := state(t, nil)
	err := call(L, s, "while true do pcall(function() while true do end end) end")
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v", err)
	}
}

func TestQuickCallsAreNotStopped(t *testing.T) {
	// A budget far above one short call, so a loaded machine's scheduling
	// delays (or the race detector's tenfold cost) do not count.
	const budget = 200 * time.Millisecond
	withLimits(t, Limits{Timeout: budget})
	L, s := state(t, nil)
	// Short calls until they add up to three budgets: each is alone.
	begin := time.Now()
	calls := 0
	for ; time.Since(begin) < 3*budget; calls++ {
		if calls == 100000 {
			t.Fatal("100,000 calls in less than three budgets: is the clock stopped?")
		}
		if err := call(L, s, "local x = 0 for i = 1, 1000 do x = x + i end"); err != nil {
			t.Fatalf("call %d, %v in: %v", calls, time.Since(begin), err)
		}
	}
	t.Logf("%d calls in %v, none stopped", calls, time.Since(begin))
}

func TestNoBudgetButTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	withLimits(t, Limits{Context: ctx})
	L, s := state(t, nil)
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := call(L, s, "while true do end"); !errors.Is(err, ErrStopped) {
		t.Fatalf("err = %v, want ErrStopped", err)
	}
}

func TestDeviceBudget(t *testing.T) {
	withLimits(t, Limits{Timeout: 10 * time.Millisecond}) // devices: none
	L := NewState()
	defer L.Close()
	s := NewDeviceSlot(context.Background(), "dev.lua")
	defer s.Close()
	L.SetContext(s.Context())
	if err := call(L, s, "for i = 1, 3e5 do end"); err != nil {
		t.Fatalf("a device has no budget by default: %v", err)
	}
	Set(Limits{DeviceTimeout: 30 * time.Millisecond})
	err := call(L, s, "while true do end")
	if err == nil || !strings.Contains(err.Error(), "dev.lua: ran 30ms without waiting") {
		t.Fatalf("err = %v", err)
	}
}

func TestVictims(t *testing.T) {
	a, b, c := &Slot{name: "a"}, &Slot{name: "b"}, &Slot{name: "c"}
	now := time.Now()
	a.since.Store(now.Add(-time.Second).UnixNano())
	b.since.Store(now.Add(-3 * time.Second).UnixNano())
	c.since.Store(now.UnixNano()) // just started: not a suspect yet
	if v, _ := longest([]*Slot{a, b, c}); v != b {
		t.Errorf("longest = %v, want b", v.name)
	}
	a.since.Store(0)
	b.since.Store(0)
	if v, _ := longest([]*Slot{a, b, c}); v != nil {
		t.Errorf("longest of calls younger than a tick = %v", v.name)
	}
	a.made.Store(5 << 20)
	c.made.Store(50 << 20)
	if v := biggest([]*Slot{a, b, c}); v != c {
		t.Errorf("biggest = %v, want c", v)
	}
	c.made.Store(100)
	a.made.Store(100)
	if v := biggest([]*Slot{a, b, c}); v != nil {
		t.Errorf("nobody made a MiB, yet %v is blamed", v.name)
	}
}

func TestMemoryCapStopsTheBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 256 MiB")
	}
	withLimits(t, Limits{Memory: Heap() + 128<<20})
	L, s := state(t, nil)
	// A quiet state beside it, idle, keeps running.
	L2, s2 := state(t, nil)
	err := call(L, s, "local t = {} while true do t[#t+1] = string.rep('x', 1e6) end")
	var le *LimitError
	if !errors.As(err, &le) || !le.Memory {
		t.Fatalf("err = %v, want the memory cap", err)
	}
	if !strings.Contains(err.Error(), "over the Lua memory cap") {
		t.Errorf("message %q", err)
	}
	if err := call(L2, s2, "y = string.rep('y', 10)"); err != nil {
		t.Fatalf("the other state: %v", err)
	}
}

func TestBoundedFunctions(t *testing.T) {
	withLimits(t, Limits{Memory: Heap() + 1<<30}) // strings up to 64 MiB
	L, s := state(t, nil)
	for src, want := range map[string]string{
		"string.rep('x', 2^40)":                                "string.rep: the result would be",
		"string.rep('ab', 4e7)":                                "string.rep: the result would be 80000000 bytes",
		"string.format('%099999d', 1)":                         "invalid format",
		"string.format('%.123f', 1)":                           "invalid format",
		"string.rep('x', 1e4):gsub('x', string.rep('y', 1e4))": "string.gsub: the result would be",
		"local t = {} for i = 1, 20 do t[i] = string.rep('z', 4e6) end return table.concat(t)": "table.concat: the result would be",
	} {
		err := call(L, s, src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
	}
	for _, src := range []string{
		"assert(string.rep('ab', 3) == 'ababab' and string.rep('x', 0) == '' and string.rep('x', -1) == '')",
		"assert(string.format('%5.2f|%-3d|%s|%%', 1.5, 2, 'x') == ' 1.50|2  |x|%')",
		"assert(('a,b'):gsub(',', ';') == 'a;b' and select(2, ('aaa'):gsub('a', '%0%0', 2)) == 2)",
		"assert(table.concat({1, 'b', 3}, '-') == '1-b-3' and table.concat({}, 'x') == '')",
	} {
		if err := call(L, s, src); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
	if s.made.Load() < 9e6 {
		t.Errorf("made = %d: big strings are not counted", s.made.Load())
	}
}

func TestRestricted(t *testing.T) {
	L, s := state(t, nil)
	for _, src := range []string{"os.execute('true')", "os.exit(0)", "os.remove('x')", "os.getenv('HOME')",
		"dofile('x')", "loadfile('x')", "require('x')", "io.open('x')", "package.loadlib('x')"} {
		err := call(L, s, src)
		if err == nil || !strings.Contains(err.Error(), "not available") {
			t.Errorf("%s: err = %v", src, err)
		}
	}
	if err := call(L, s, "assert(os.time() > 0 and os.clock() >= 0 and os.date('%Y') and coroutine.wrap)"); err != nil {
		t.Error(err)
	}
	withLimits(t, Limits{Unsafe: true})
	L2, s2 := state(t, nil)
	if err := call(L2, s2, "assert(os.getenv('PATH') and io.open and dofile and require)"); err != nil {
		t.Errorf("--lua-unsafe: %v", err)
	}
	if err := call(L2, s2, "os.exit(0)"); err == nil || !strings.Contains(err.Error(), "os.exit is not available") {
		t.Errorf("os.exit under --lua-unsafe: %v", err)
	}
}

func TestHookBudget(t *testing.T) {
	withLimits(t, Limits{Timeout: time.Second, HookTimeout: 20 * time.Millisecond})
	L := NewState()
	defer L.Close()
	s := NewHookSlot("hooks.lua")
	defer s.Close()
	L.SetContext(s.Context())
	start := time.Now()
	err := call(L, s, "while true do end")
	if err == nil || !strings.Contains(err.Error(), "hooks.lua: still running after 20ms") {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took > 20*time.Millisecond+slack {
		t.Errorf("stopped after %v", took)
	}
}

// slack is how late a budget may be enforced in a test: a tick, and the
// scheduling delays of a machine shared with other jobs.
const slack = 750 * time.Millisecond

// The watchdog found a call late, but the call left before the cancel: the
// cancel must not land on the next call of the same slot (another
// connection's hook, a pooled framer's next Decode).
func TestLateCancelSparesTheNextCall(t *testing.T) {
	withLimits(t, Limits{}) // no budget: the real watchdog stays out of it
	s := NewSlot(context.Background(), "t.lua")
	defer s.Close()
	cause := &LimitError{Script: "t.lua", Budget: 50 * time.Millisecond}
	s.Enter()
	s.since.Store(time.Now().Add(-time.Second).UnixNano()) // went over budget
	seq, late := s.late(time.Now(), 50*time.Millisecond)
	if !late {
		t.Fatal("a call a second into a 50ms budget is not late")
	}
	if err := s.Leave(); err != nil { // it ended just before the cancel
		t.Fatalf("Leave: %v", err)
	}
	s.Enter() // the next, innocent call
	s.stopCall(seq, cause)
	if err := s.Leave(); err != nil {
		t.Fatalf("the next call was cancelled: %v", err)
	}
	// The call still running is cancelled.
	s.Enter()
	s.since.Store(time.Now().Add(-time.Second).UnixNano())
	seq, _ = s.late(time.Now(), 50*time.Millisecond)
	s.stopCall(seq, cause)
	var le *LimitError
	if err := s.Leave(); !errors.As(err, &le) {
		t.Fatalf("the late call: %v, want its budget", err)
	}
}

// Over the cap with no Lua to blame, a collection is forced once in a
// while, not at every check.
func TestForcedGCRateLimited(t *testing.T) {
	lastForcedGC = time.Time{}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 5 {
		memoryCheck(nil, 1) // the heap is always over one byte
	}
	runtime.ReadMemStats(&after)
	if n := after.NumForcedGC - before.NumForcedGC; n != 1 {
		t.Fatalf("%d forced collections in 5 checks, want 1", n)
	}
}
