package script

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/script/guard"
)

// slack is how late a budget may be enforced in a test: the watchdog's tick
// and the scheduling delays of a machine shared with other jobs.
const slack = 2 * time.Second

// withLimits sets the guard's limits for one test.
func withLimits(t *testing.T, l guard.Limits) {
	t.Helper()
	old := guard.Current()
	guard.Set(l)
	t.Cleanup(func() { guard.Set(old) })
}

// One device of several fills memory without end: it alone is stopped, with
// the cap in its error, and the others finish.
func TestMemoryBombStopsOnlyItsDevice(t *testing.T) {
	withLimits(t, guard.Limits{Memory: guard.Heap() + 128<<20})
	p, err := Compile("bomb.lua", []byte(`
		if device.id == 2 then
		  local t = {}
		  while true do t[#t+1] = string.rep("x", 1e6) end
		end
		for i = 1, 10 do sleep(0.02) end
		print("done")`))
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuf
	env := &Env{Count: 4, Stdout: &out}
	errs := make([]error, 5)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for id := 1; id <= 4; id++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[id] = p.Run(ctx, id, env) }()
	}
	wg.Wait()
	var de *DeviceError
	if !errors.As(errs[2], &de) || !strings.Contains(de.Msg, "bomb.lua: stopped: the heap reached") {
		t.Fatalf("device 2: %v", errs[2])
	}
	for _, id := range []int{1, 3, 4} {
		if errs[id] != nil {
			t.Errorf("device %d: %v", id, errs[id])
		}
	}
	if n := strings.Count(out.String(), "done"); n != 3 {
		t.Errorf("%d devices finished, want 3", n)
	}
}

// --lua-timeout given to simulate bounds a device's run between two waits;
// runs that wait in between add up to any length.
func TestDeviceTimeout(t *testing.T) {
	withLimits(t, guard.Limits{DeviceTimeout: 50 * time.Millisecond})
	r := run(t, "for i = 1, 5 do sleep(0.02) end print('ok')", 5*time.Second, nil)
	if r.err != nil || r.out != "ok\n" {
		t.Fatalf("waiting device: %q %v", r.out, r.err)
	}
	r = run(t, "sleep(0.01)\nwhile true do end", 5*time.Second, nil)
	var de *DeviceError
	if !errors.As(r.err, &de) || !strings.Contains(de.Msg, "test.lua: ran 50ms without waiting (sleep, recv...), its budget (--lua-timeout)") {
		t.Fatalf("err = %v", r.err)
	}
	if r.elapsed > 50*time.Millisecond+slack {
		t.Errorf("stopped after %v", r.elapsed)
	}
}

// Without a device budget, a loop that never yields ends with its context
// (Ctrl-C): no budget error, just stopped.
func TestSpinningDeviceStopsWithItsContext(t *testing.T) {
	r := run(t, "while true do end", 100*time.Millisecond, nil)
	if !errors.Is(r.err, ErrStopped) || r.elapsed > 100*time.Millisecond+slack {
		t.Fatalf("err = %v after %v", r.err, r.elapsed)
	}
}
