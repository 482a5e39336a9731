package script

import (
	"net"
	"strings"
	"testing"
	"time"
)

// closerServer accepts connections and closes each after a pause, so that
// a recv waiting on it ends with "closed".
func closerServer(t *testing.T, pause time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for i := 0; i < 10; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			time.AfterFunc(pause, func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}

// refusedAddr is a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A call that waits (the coroutine yields to the device's scheduler and is
// resumed with its results) must give the script what a plain return does:
// results it did not give read as nil. `local c, err = net.connect(...)`
// that succeeded, then print(err), crashed the device with "invalid memory
// address or nil pointer dereference": err's register held a Go nil. Each
// line assigns three results and uses all three; the waits are real ones
// (the data is not there yet when the call is made).
func TestWaitingCallResults(t *testing.T) {
	echo := wireServer(t, []byte("hello\n"))
	src := `
local function show(label, a, b, c) print(label, type(a), type(b), type(c)) end
local c, err, x = net.connect(TARGET, {frame = "line"})       show("connect", c, err, x)
local m, err, x = c:recv(2)                                   show("recv", m, err, x)
local m, err, x = c:recv(0.05)                                show("recv timeout", m, err, x)
local ok, err, x = c:send("ping")                             show("send", ok, err, x)
local m, err, x = c:recv_until("\n", 2)                       show("recv_until", m, err, x)
local r, err, x = sleep(0.01)                                 show("sleep", r, err, x)
local function get() return c:recv(2) end -- a tail call that waits
c:send("tail")
local m, err, x = get()                                       show("tail call", m, err, x)
c:send("n")
print("count", select("#", c:recv(2)), select("#", c:recv(0.01)))
local k, err, x = net.connect(args.refused)                   show("connect refused", k, err, x)
local k = assert(net.connect(args.closer))
local m, err, x = k:recv(2)                                   show("recv closed", m, err, x)
local k = assert(net.connect(args.closer))
local m, err, x = k:recv_until("\n", 2)                       show("recv_until closed", m, err, x)
local l = assert(net.listen("127.0.0.1:0", {frame = "line"}, function(h)
  local m, err, x = h:recv(2)                                 show("handler recv", m, err, x)
  local m, err, x = h:recv(2)                                 show("handler closed", m, err, x)
end))
local cc = assert(net.connect(l:addr(), {frame = "line"}))
cc:send("hi")
sleep(0.05)
cc:close()
sleep(0.05)
l:close()
spawn(function() local a, b, x = coroutine.yield()           show("yield", a, b, x) end)
`
	r := run(t, src, 10*time.Second, &Env{Target: echo, Args: map[string]string{
		"refused": refusedAddr(t), "closer": closerServer(t, 50*time.Millisecond)}})
	if r.err != nil {
		t.Fatalf("device failed: %v\noutput:\n%s", r.err, r.out)
	}
	want := `connect	userdata	nil	nil
recv	string	nil	nil
recv timeout	nil	string	nil
send	boolean	nil	nil
recv_until	string	nil	nil
sleep	nil	nil	nil
tail call	string	nil	nil
count	1	2
connect refused	nil	string	nil
recv closed	nil	string	nil
recv_until closed	nil	string	nil
handler recv	string	nil	nil
handler closed	nil	string	nil
yield	nil	nil	nil`
	if got := strings.TrimSpace(r.out); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// The script's own coroutines have the same defect in gopher-lua's
// coroutine.resume: a yield resumed with fewer values than it assigns.
func TestOwnCoroutineResults(t *testing.T) {
	r := run(t, `
local co = coroutine.create(function() local a, b = coroutine.yield() print(type(a), type(b)) end)
coroutine.resume(co)
print(coroutine.resume(co, 1))
local f = coroutine.wrap(function(v) local a, b = coroutine.yield(v) print(type(a), type(b)) return "done" end)
print(f("first"))
print(f(2))
print(pcall(f))
`, 5*time.Second, nil)
	if r.err != nil {
		t.Fatalf("device failed: %v", r.err)
	}
	want := "number\tnil\ntrue\nfirst\nnumber\tnil\ndone\nfalse\ttest.lua:8: can not resume a dead thread"
	if got := strings.TrimSpace(r.out); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// `return sleep(1)` or `return c:recv()` as a coroutine's last act is a tail
// call: the coroutine has no frame left while the call waits. The task ended
// there and then: the device did not wait for the sleep, a handler's
// connection was hung up under its recv.
func TestTailCallWaitAtCoroutineEnd(t *testing.T) {
	r := run(t, `spawn(function() return sleep(0.2) end)`, 5*time.Second, nil)
	if r.err != nil || r.elapsed < 200*time.Millisecond {
		t.Errorf("spawn(function() return sleep(0.2) end): %v after %v, want the device to last 0.2s", r.err, r.elapsed)
	}
	r = run(t, `
local l = assert(net.listen("127.0.0.1:0", function(h) return h:recv(2) end))
local c = assert(net.connect(l:addr()))
print(c:recv(0.3)) -- the handler still holds its connection: a timeout, not "closed"
c:send("x")
print(c:recv(2)) -- it got x and returned: now its connection is closed
l:close()
`, 5*time.Second, nil)
	if r.err != nil {
		t.Fatalf("device failed: %v", r.err)
	}
	if got, want := strings.TrimSpace(r.out), "nil\ttimeout\nnil\tclosed"; got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
