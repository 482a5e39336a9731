package script

import (
	"fmt"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// sleep(sec): the calling coroutine waits; the others run.
func luaSleep(L *lua.LState) int {
	d := devOf(L)
	sec := float64(L.CheckNumber(1))
	t := d.block(L, "sleep")
	d.sleep(t, sec)
	return L.Yield()
}

// now(): seconds since the device started, with sub-millisecond precision.
func luaNow(L *lua.LState) int {
	d := devOf(L)
	L.Push(lua.LNumber(time.Since(d.start).Seconds()))
	return 1
}

// handle is what every and after return: h:stop() cancels it.
type handle struct {
	d       *Device
	t       *timer
	stopped bool
	running *task  // every: the callback still running, if any
	onStop  func() // what else stopping ends (coap.observe's socket)
}

func (h *handle) stop() {
	if h.stopped {
		return
	}
	h.stopped = true
	h.d.keep--
	if h.onStop != nil {
		h.onStop()
	}
	if h.t != nil {
		h.d.stopTimer(h.t)
		h.t = nil
	}
}

var timerMethods = map[string]lua.LGFunction{
	"stop": func(L *lua.LState) int {
		checkHandle(L).stop()
		return 0
	},
}

func checkHandle(L *lua.LState) *handle { return checkSelf[*handle](L, "timer") }

// newHandle counts h as keeping the device alive and makes its userdata.
func (d *Device) newHandle(L *lua.LState, h *handle) *lua.LUserData {
	d.keep++
	u := L.NewUserData()
	u.Value = h
	u.Metatable = libs().timer
	return u
}

// every(sec, fn): run fn each sec seconds as its own coroutine. A tick that
// comes while the previous call is still running is skipped.
func luaEvery(L *lua.LState) int {
	d := devOf(L)
	sec := float64(L.CheckNumber(1))
	fn := L.CheckFunction(2)
	if sec <= 0 {
		L.ArgError(1, "interval must be positive")
	}
	h := &handle{d: d}
	u := d.newHandle(L, h) // each call gets the handle every returned
	origin := "in every() callback started at " + where(L)
	var tick func()
	tick = func() {
		if h.stopped {
			return
		}
		if h.running == nil {
			t := d.spawn(fn, origin, u)
			h.running = t
			t.onDone = func() { h.running = nil }
		}
		h.t = d.addTimer(sec, tick)
	}
	h.t = d.addTimer(sec, tick)
	L.Push(u)
	return 1
}

// after(sec, fn): run fn once, sec seconds from now, as its own coroutine.
func luaAfter(L *lua.LState) int {
	d := devOf(L)
	sec := float64(L.CheckNumber(1))
	fn := L.CheckFunction(2)
	h := &handle{d: d}
	origin := "in after() callback started at " + where(L)
	h.t = d.addTimer(sec, func() {
		h.t = nil
		h.stop()
		d.spawn(fn, origin)
	})
	L.Push(d.newHandle(L, h))
	return 1
}

// spawn(fn, ...): run fn(...) now as its own coroutine.
func luaSpawn(L *lua.LState) int {
	d := devOf(L)
	fn := L.CheckFunction(1)
	var args []lua.LValue
	for i := 2; i <= L.GetTop(); i++ {
		args = append(args, L.Get(i))
	}
	d.spawn(fn, "in spawn() started at "+where(L), args...)
	return 0
}

// where is the script position of the Lua code calling the current function.
func where(L *lua.LState) string {
	w := strings.TrimRight(L.Where(1), ": ")
	if w == "" {
		return "?"
	}
	return w
}

func concatArgs(L *lua.LState) string {
	var b strings.Builder
	for i := 1; i <= L.GetTop(); i++ {
		if i > 1 {
			b.WriteByte('\t')
		}
		b.WriteString(L.ToStringMeta(L.Get(i)).String())
	}
	return b.String()
}

func basePrint(L *lua.LState) int {
	d := devOf(L)
	d.env.write(d.env.Stdout, concatArgs(L)+"\n")
	return 0
}

func logAt(level string) lua.LGFunction {
	return func(L *lua.LState) int {
		d := devOf(L)
		if level == "debug" && !d.env.Verbose {
			return 0
		}
		prefix := fmt.Sprintf("device %d: ", d.ID)
		switch level {
		case "warn":
			prefix += "warning: "
		case "error", "debug":
			prefix += level + ": "
		}
		d.env.write(d.env.Stderr, prefix+concatArgs(L)+"\n")
		return 0
	}
}

// math.random and math.randomseed with the device's own generator, seeded
// from --seed and the device id, so a run can be repeated.
func mathRandom(L *lua.LState) int {
	d := devOf(L)
	switch L.GetTop() {
	case 0:
		L.Push(lua.LNumber(d.rng.Float64()))
	case 1:
		m := L.CheckInt64(1)
		if m < 1 {
			L.ArgError(1, "interval is empty")
		}
		L.Push(lua.LNumber(d.rng.Int64N(m) + 1))
	default:
		m, n := L.CheckInt64(1), L.CheckInt64(2)
		if m > n {
			L.ArgError(2, "interval is empty")
		}
		L.Push(lua.LNumber(m + d.rng.Int64N(n-m+1)))
	}
	return 1
}

func mathRandomSeed(L *lua.LState) int {
	d := devOf(L)
	d.pcg.Seed(uint64(L.CheckInt64(1)), uint64(d.ID))
	return 0
}
