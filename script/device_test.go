package script

import (
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/testpeer"
)

func TestSyntaxError(t *testing.T) {
	_, err := Compile("bad.lua", []byte("local x = 1\nif x then\n  print(x\n"))
	if !errors.Is(err, ErrSyntax) {
		t.Fatalf("err = %v, want ErrSyntax", err)
	}
	if !strings.HasPrefix(err.Error(), "bad.lua:") {
		t.Errorf("err = %q, want bad.lua:LINE: prefix", err)
	}
	_, err = Compile("bad.lua", []byte("x = = 1"))
	if err == nil || !strings.HasPrefix(err.Error(), "bad.lua:1: ") {
		t.Errorf("err = %v, want bad.lua:1:", err)
	}
}

func TestSleepAndOrder(t *testing.T) {
	r := run(t, `
		after(0.02, function() print("after") end)
		local h; local n = 0
		h = every(0.05, function() n = n + 1; if n == 3 then print("every3"); h:stop() end end)
		print("start")
		sleep(0.4)
		print("end", n)
	`, 3*time.Second, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := "start\nafter\nevery3\nend\t3\n"
	if r.out != want {
		t.Errorf("out = %q, want %q", r.out, want)
	}
	if r.elapsed < 400*time.Millisecond || r.elapsed > 2*time.Second {
		t.Errorf("took %v", r.elapsed)
	}
}

// The device lives while a timer it started is pending, after main returns.
func TestDeviceLivesWhileTimerPending(t *testing.T) {
	r := run(t, `after(0.05, function() print("late") end)`, 2*time.Second, nil)
	if r.err != nil || r.out != "late\n" {
		t.Fatalf("out %q err %v", r.out, r.err)
	}
}

func TestRuntimeErrorHasLineAndOrigin(t *testing.T) {
	r := run(t, "local x = 1\nafter(0, function()\n  local t = nil\n  return t.field\nend)\nsleep(1)\n", 2*time.Second, nil)
	var de *DeviceError
	if !errors.As(r.err, &de) {
		t.Fatalf("err = %v, want DeviceError", r.err)
	}
	if !strings.Contains(de.Msg, "test.lua:4:") || !strings.Contains(de.Trace, "after() callback started at test.lua:2") {
		t.Errorf("err = %v", r.err)
	}
	if r.elapsed > 500*time.Millisecond {
		t.Errorf("a failing callback should stop the device at once, took %v", r.elapsed)
	}
}

func TestNonYieldingLoopStoppedByDeadline(t *testing.T) {
	r := run(t, "while true do end", 200*time.Millisecond, nil)
	if !errors.Is(r.err, ErrStopped) {
		t.Fatalf("err = %v, want ErrStopped", r.err)
	}
	if r.elapsed > time.Second {
		t.Errorf("took %v", r.elapsed)
	}
}

func TestCoroutineYieldAndNestedWait(t *testing.T) {
	r := run(t, `
		spawn(function() for i = 1, 3 do print("b", i); coroutine.yield() end end)
		for i = 1, 3 do print("a", i); coroutine.yield() end
		local co = coroutine.create(function() sleep(0.01) end)
		local ok, err = coroutine.resume(co)
		print(ok, (string.gsub(err, "^.-: ", "")))
	`, 2*time.Second, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := "a\t1\nb\t1\na\t2\nb\t2\na\t3\nb\t3\nfalse\tsleep cannot wait inside coroutine.create/wrap; use spawn, every or after\n"
	if r.out != want {
		t.Errorf("out = %q\nwant  %q", r.out, want)
	}
}

func TestRandomDeterministic(t *testing.T) {
	src := `print(math.random(1, 1000000), math.random(), math.random(6))`
	a := run(t, src, time.Second, &Env{Seed: 7})
	b := run(t, src, time.Second, &Env{Seed: 7})
	c := run(t, src, time.Second, &Env{Seed: 8})
	if a.out != b.out || a.out == c.out || a.err != nil {
		t.Errorf("seed 7: %q %q, seed 8: %q (%v)", a.out, b.out, c.out, a.err)
	}
}

func TestGlobalsAreIsolated(t *testing.T) {
	// Writing a library table lands in the device's own proxy.
	r := run(t, `string.shout = function(s) return s:upper() .. "!" end
		print(("hi"):shout(), string.format("%d", 3), device.id, device.count, args.k, (pcall(dofile, "x")), (pcall(function() return io.open end)))`,
		time.Second, &Env{Args: map[string]string{"k": "v"}})
	if r.err != nil || r.out != "HI!\t3\t1\t1\tv\tfalse\tfalse\n" {
		t.Fatalf("out %q err %v", r.out, r.err)
	}
	r = run(t, `print(string.shout)`, time.Second, nil)
	if r.out != "nil\n" {
		t.Errorf("another device sees %q", r.out)
	}
}

// A library's proxy is made the first time the device names it, once: a
// device's globals hold only the libraries it used, and a write to one
// stays there.
func TestLibraryProxyMadeOnce(t *testing.T) {
	r := run(t, `local before = rawget(_G, "math")
		local m = math
		math.answer = 42
		print(before, m == math, rawget(_G, "math") == m, math.answer, math.floor(2.5), rawget(_G, "coap"))`,
		time.Second, nil)
	if r.err != nil || r.out != "nil\ttrue\ttrue\t42\t2\tnil\n" {
		t.Fatalf("out %q err %v", r.out, r.err)
	}
	if r = run(t, `print(math.answer)`, time.Second, nil); r.out != "nil\n" {
		t.Errorf("another device sees %q", r.out)
	}
}

// listen starts a TCP server on loopback that runs fn per connection.
func listen(t *testing.T, fn func(net.Conn)) string {
	t.Helper()
	return testpeer.TCP(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fn(c)
	})
}

func TestRecvTimeoutThenData(t *testing.T) {
	addr := listen(t, func(c net.Conn) {
		time.Sleep(150 * time.Millisecond)
		c.Write([]byte("late\n"))
		time.Sleep(100 * time.Millisecond)
	})
	r := run(t, `
		local c = assert(net.connect(TARGET, {frame = "line"}))
		print(c:recv(0.05))
		print(c:recv(0))
		print(c:recv(1))
		print(c:recv(1))
	`, 3*time.Second, &Env{Target: addr})
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := "nil\ttimeout\nnil\ttimeout\nlate\nnil\tclosed\n"
	if r.out != want {
		t.Errorf("out = %q, want %q", r.out, want)
	}
}

func TestCloseWhileWaiting(t *testing.T) {
	addr := listen(t, func(c net.Conn) { time.Sleep(time.Second) })
	r := run(t, `
		local c = assert(net.connect(TARGET))
		after(0.05, function() c:close() end)
		local t0 = now()
		local m, err = c:recv(2)
		print(m, err, now() - t0 < 0.5)
		print(c:send("x"))
	`, 3*time.Second, &Env{Target: addr})
	if r.err != nil || r.out != "nil\tclosed\ttrue\nnil\tclosed\n" {
		t.Fatalf("out %q err %v", r.out, r.err)
	}
}

func TestTimerFiresDuringBlockedRecv(t *testing.T) {
	addr := listen(t, func(c net.Conn) {
		buf := make([]byte, 64)
		n, _ := c.Read(buf) // the ticks
		c.Write(buf[:n])
		time.Sleep(100 * time.Millisecond)
	})
	r := run(t, `
		local c = assert(net.connect(TARGET))
		local n = 0
		local h = every(0.02, function() n = n + 1 end)
		after(0.11, function() c:send("tick") end)
		print(c:recv(2), n >= 2)
		h:stop()
	`, 3*time.Second, &Env{Target: addr})
	if r.err != nil || r.out != "tick\ttrue\n" {
		t.Fatalf("out %q err %v", r.out, r.err)
	}
}

func TestConnectRefused(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	r := run(t, `print(net.connect("`+addr+`"))`, 3*time.Second, nil)
	if r.err != nil || !strings.HasPrefix(r.out, "nil\t") || !strings.Contains(r.out, "refused") {
		t.Fatalf("out %q err %v", r.out, r.err)
	}
}

func TestListenEcho(t *testing.T) {
	r := run(t, `
		local l = assert(net.listen("127.0.0.1:0", {frame = "line"}, function(c)
			local m = c:recv(2)
			c:send("echo " .. m)
			c:close()
		end))
		local c = assert(net.connect(l:addr(), {frame = "line"}))
		c:send("hello")
		print(c:recv(2))
		print(c:recv_until("x", 1))
		l:close()
	`, 3*time.Second, nil)
	if r.err != nil || r.out != "echo hello\nnil\tclosed\n" {
		t.Fatalf("out %q err %v", r.out, r.err)
	}
	if r.stats.MsgsSent.Load() != 2 || r.stats.MsgsRecv.Load() != 2 {
		t.Errorf("sent %d recv %d", r.stats.MsgsSent.Load(), r.stats.MsgsRecv.Load())
	}
}

// A runtime error names the script:line and the calls that led there.
func TestRuntimeErrorTraceback(t *testing.T) {
	for _, c := range []struct{ src, msg, trace string }{
		{ // a VM error two calls deep
			"local function read(t)\n  return t.field\nend\nlocal function poll()\n  return read(nil) + 1\nend\npoll()\n",
			"test.lua:2: attempt to index a non-table object(nil) with key 'field'",
			"test.lua:5: in function 'poll'\n\ttest.lua:7: in main chunk",
		},
		{ // error() in a callback: the raising line is not repeated
			"local function check(v)\n  if v > 2 then error('too hot') end\nend\nevery(0.001, function(h)\n  check(3)\nend)\n",
			"test.lua:2: too hot",
			"test.lua:5: in function <test.lua:4>\n\tin every() callback started at test.lua:4",
		},
		{ // straight in the main chunk: no calls, just where
			"local x = nil\nprint(x.y)\n",
			"test.lua:2: attempt to index a non-table object(nil) with key 'y'",
			"in main chunk",
		},
		{ // deep recursion is cut short
			"local function f(n)\n  if n == 0 then error('bottom') end\n  f(n - 1)\nend\nf(5)\n",
			"test.lua:2: bottom",
			"test.lua:3: in function 'f'\n\ttest.lua:3: in function 'f'\n\ttest.lua:3: in function 'f'\n\t(3 more)",
		},
	} {
		r := run(t, c.src, 2*time.Second, nil)
		var de *DeviceError
		if !errors.As(r.err, &de) {
			t.Fatalf("err = %v, want DeviceError", r.err)
		}
		if de.Msg != c.msg || de.Trace != c.trace {
			t.Errorf("got\n%s\n\t%s\nwant\n%s\n\t%s", de.Msg, de.Trace, c.msg, c.trace)
		}
		if want := "device 1: " + c.msg + "\n\t" + c.trace; de.Error() != want {
			t.Errorf("Error() = %q", de.Error())
		}
	}
}

// goDial runs every queued connect, never more than maxDials at once.
func TestGoDialBounded(t *testing.T) {
	var e Env
	var running, most, ran atomic.Int64
	var wg sync.WaitGroup
	n := 3 * maxDials
	wg.Add(n)
	for i := 0; i < n; i++ {
		e.goDial(func() {
			defer wg.Done()
			r := running.Add(1)
			for m := most.Load(); r > m && !most.CompareAndSwap(m, r); m = most.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			ran.Add(1)
		})
	}
	wg.Wait()
	if ran.Load() != int64(n) || most.Load() > maxDials || most.Load() < 2 {
		t.Fatalf("%d of %d ran, at most %d at once (bound %d)", ran.Load(), n, most.Load(), maxDials)
	}
	// The last goroutines leave just after their dial returns.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
		e.gateMu.Lock()
		left, queued := e.gateRun, len(e.gateQ)
		e.gateMu.Unlock()
		if left == 0 && queued == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dial goroutines and %d queued left", left, queued)
		}
	}
}

// onWorker runs its func on another goroutine and returns after it; turns
// of many devices run at once, each on a worker of its own.
func TestOnWorkerConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	var inside, most atomic.Int64
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := false
			onWorker(func() {
				r := inside.Add(1)
				for m := most.Load(); r > m && !most.CompareAndSwap(m, r); m = most.Load() {
				}
				time.Sleep(20 * time.Millisecond) // a turn that blocks: the others go on
				inside.Add(-1)
				done = true
			})
			if !done {
				t.Error("onWorker returned before its func was done")
			}
		}()
	}
	wg.Wait()
	if most.Load() < 10 {
		t.Errorf("at most %d turns ran at once: a blocked turn held the others", most.Load())
	}
}
