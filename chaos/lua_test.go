package chaos

// Issue 9, item 5: Lua without bounds. A runaway framer, hook or device
// script stops alone, within its budget, and leaves the other connections
// and devices alone; a memory bomb is stopped under the cap and the process
// lives; hooks and framers cannot run commands, end the process or read
// files; SIGINT and SIGTERM end the process within a second whatever Lua is
// doing, and the recording parses.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// spinFramer is a line framer whose decode never returns once "spin" is in
// what it was given.
const spinFramer = `return {
  decode = function(buf)
    if buf:find("spin", 1, true) then while true do end end
    local i = buf:find("\n", 1, true)
    if i then return buf:sub(1, i - 1), i end
  end,
  encode = function(msg) return msg .. "\n" end,
}`

// spinHook spins on the message "spin" and passes the others.
const spinHook = `function on_message(conn, dir, msg)
  if msg == "spin" then while true do end end
  return msg
end`

func writeFile(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// lat collects latencies from several goroutines.
type lat struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *lat) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }

// pct returns the p-th percentile, the maximum and the count.
func (l *lat) pct(p float64) (time.Duration, time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(i, 0)], s[len(s)-1], len(s)
}

// pingers run n clients against addr for d: each sends a line, waits for
// it to come back and notes the round trip.
func pingers(t *testing.T, addr string, n int, d time.Duration) *lat {
	t.Helper()
	var l lat
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for c := 0; c < n; c++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			r := bufio.NewReader(conn)
			for i := 0; time.Now().Before(deadline); i++ {
				msg := fmt.Sprintf("client %d ping %d\n", c, i)
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				t0 := time.Now()
				if _, err := io.WriteString(conn, msg); err != nil {
					t.Errorf("client %d: %v", c, err)
					return
				}
				got, err := r.ReadString('\n')
				if err != nil || got != msg {
					t.Errorf("client %d: got %q %v, want %q", c, got, err, msg)
					return
				}
				l.add(time.Since(t0))
				time.Sleep(2 * time.Millisecond) // a chatty device, not a flood
			}
		}()
	}
	wg.Wait()
	return &l
}

// spinner opens a connection to addr every interval until stop, sends
// "spin" on it and leaves it open: a script that a peer sends into a loop,
// again and again.
func spinner(t *testing.T, addr string, every time.Duration, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			if c, err := net.Dial("tcp", addr); err == nil {
				io.WriteString(c, "spin\n")
				conns = append(conns, c)
			}
			select {
			case <-stop:
				return
			case <-time.After(every):
			}
		}
	}()
	return &wg
}

// sizes are the short run's and the soak's: clients, seconds, spin period.
func sizes() (clients int, d, spinEvery time.Duration) {
	if *soak {
		return 16, 30 * time.Second, 500 * time.Millisecond
	}
	return 4, 3 * time.Second, time.Second
}

// roundTrips measures the other clients' round trips through addr while a
// spinner sends a script into its loop every spinEvery.
func roundTrips(t *testing.T, name, addr string, p *e2e.Proc) {
	clients, d, every := sizes()
	stop := make(chan struct{})
	sp := spinner(t, addr, every, stop)
	time.Sleep(20 * time.Millisecond) // the first spin is running
	l := pingers(t, addr, clients, d)
	close(stop)
	sp.Wait()
	p99, worst, n := l.pct(99)
	figure(t, name, "p99 %v, max %v over %d round trips of %d clients, a new spin every %v", p99.Round(10*time.Microsecond), worst.Round(time.Millisecond), n, clients, every)
	if n == 0 {
		t.Fatal("no round trip")
	}
	if p99 > 50*time.Millisecond {
		t.Errorf("p99 round trip beside the spinning script %v, want under 50ms", p99)
	}
}

func TestLuaSpinningFramerRelay(t *testing.T) {
	framer := writeFile(t, "spin.lua", spinFramer)
	port := e2e.FreePort(t)
	addr := "127.0.0.1:" + itoa(port)
	p := e2e.Start(t, "wirecat", "relay", addr, "tcp://"+echoServer(t), "--frame", "lua:"+framer)
	e2e.WaitListen(t, port)
	roundTrips(t, "spinning framer, relay", addr, p)
	if !strings.Contains(p.Stderr.String(), "spin.lua: decode: still running after 100ms, its budget (--lua-timeout)") {
		t.Errorf("stderr does not name the script and its budget: %.500q", p.Stderr)
	}
	select {
	case <-p.Done():
		t.Fatal("the relay ended")
	default:
	}
}

func TestLuaSpinningHook(t *testing.T) {
	hook := writeFile(t, "hooks.lua", spinHook)
	port := e2e.FreePort(t)
	addr := "127.0.0.1:" + itoa(port)
	p := e2e.Start(t, "wirecat", "relay", addr, "tcp://"+echoServer(t), "--frame", "line", "--script", hook)
	e2e.WaitListen(t, port)
	roundTrips(t, "spinning hook, relay", addr, p)
	if !strings.Contains(p.Stderr.String(), "on_message: hooks.lua: still running after 20ms, its budget (--lua-timeout); hooks stopped for this connection") {
		t.Errorf("stderr: %.500q", p.Stderr)
	}
}

// listen -k writes what its clients send to stdout: the figure is the time
// from a client's send to its line on stdout, beside a spinning framer.
func TestLuaSpinningFramerListen(t *testing.T) {
	framer := writeFile(t, "spin.lua", spinFramer)
	port := e2e.FreePort(t)
	addr := "127.0.0.1:" + itoa(port)
	pr, pw := io.Pipe()
	p := e2e.StartWith(t, nil, pw, "wirecat", "listen", "-k", addr, "--frame", "lua:"+framer)
	e2e.WaitListen(t, port)
	var mu sync.Mutex
	sent := map[string]time.Time{}
	seen := map[string]chan struct{}{}
	var l lat
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			mu.Lock()
			if t0, ok := sent[sc.Text()]; ok {
				l.add(time.Since(t0))
				close(seen[sc.Text()])
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { pw.Close() })
	clients, d, every := sizes()
	stop := make(chan struct{})
	sp := spinner(t, addr, every, stop)
	time.Sleep(20 * time.Millisecond)
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for c := 0; c < clients; c++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			for i := 0; time.Now().Before(deadline); i++ {
				msg := fmt.Sprintf("client %d line %d", c, i)
				ch := make(chan struct{})
				mu.Lock()
				sent[msg], seen[msg] = time.Now(), ch
				mu.Unlock()
				io.WriteString(conn, msg+"\n")
				select {
				case <-ch:
				case <-time.After(5 * time.Second):
					t.Errorf("%q never reached stdout", msg)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(stop)
	sp.Wait()
	p99, worst, n := l.pct(99)
	figure(t, "spinning framer, listen -k", "p99 %v, max %v over %d messages of %d clients to stdout, a new spin every %v", p99.Round(10*time.Microsecond), worst.Round(time.Millisecond), n, clients, every)
	if p99 > 50*time.Millisecond {
		t.Errorf("p99 delivery beside the spinning framer %v, want under 50ms", p99)
	}
	if !strings.Contains(p.Stderr.String(), "still running after 100ms") {
		t.Errorf("stderr: %.500q", p.Stderr)
	}
}

// One device of 100 fills memory without end: it is stopped under the cap,
// the other 99 finish, the process lives and says which device and why.
func TestLuaMemoryBombFleet(t *testing.T) {
	bomb := writeFile(t, "bomb.lua", `
if device.id == 37 then
  local t = {}
  while true do t[#t + 1] = string.rep("x", 1e6) end
end
for i = 1, 20 do sleep(0.05) end
print("done " .. device.id)`)
	capArg := "256MiB"
	if *soak {
		capArg = "1GiB" // the default
	}
	p := e2e.Start(t, "wirecat", "simulate", bomb, "--count", "100", "--lua-memory", capArg)
	var peak atomic.Int64
	go func() {
		for {
			select {
			case <-p.Done():
				return
			case <-time.After(20 * time.Millisecond):
				if v := e2e.PeakRSS(p.Pid()); v > 0 {
					peak.Store(v)
				}
			}
		}
	}()
	code := p.Wait(30 * time.Second)
	out, errOut := p.Stdout.String(), p.Stderr.String()
	done := strings.Count(out, "done ")
	figure(t, "memory bomb, 1 of 100 devices", "cap %s: peak RSS %d MiB, %d devices finished, exit %d", capArg, peak.Load()>>20, done, code)
	if done != 99 || strings.Contains(out, "done 37\n") {
		t.Errorf("%d devices finished, want the 99 others", done)
	}
	if !strings.Contains(errOut, "device 37: bomb.lua: stopped: the heap reached") || !strings.Contains(errOut, "(--lua-memory)") {
		t.Errorf("stderr does not say which device and why: %.1000q", errOut)
	}
	if !strings.Contains(errOut, "100 devices started") || !strings.Contains(errOut, "1 failed") {
		t.Errorf("summary: %.1000q", errOut)
	}
	if code != 1 {
		t.Errorf("exit %d, want 1 (a device failed)", code)
	}
}

// Hooks and framers get the device libraries: no command, no exit, no file.
func TestLuaSandboxHooksAndFramers(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	hook := writeFile(t, "hooks.lua", fmt.Sprintf(`function on_message(conn, dir, msg)
  if msg == "exec" then os.execute("touch %s") end
  if msg == "exit" then os.exit(0) end
  if msg == "dofile" then dofile("/etc/passwd") end
  return msg
end`, marker))
	port := e2e.FreePort(t)
	addr := "127.0.0.1:" + itoa(port)
	p := e2e.Start(t, "wirecat", "relay", addr, "tcp://"+echoServer(t), "--frame", "line", "--script", hook)
	e2e.WaitListen(t, port)
	for _, m := range []string{"exec", "exit", "dofile"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, m+"\nafter\n")
		r := bufio.NewReader(c)
		a, _ := r.ReadString('\n')
		b, _ := r.ReadString('\n')
		if a != m+"\n" || b != "after\n" {
			t.Errorf("%s: echoed %q %q, want both messages unmodified", m, a, b)
		}
		c.Close()
	}
	select {
	case <-p.Done():
		t.Fatal("os.exit in a hook ended the relay")
	default:
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("os.execute in a hook ran a command")
	}
	for _, want := range []string{"os.execute is not available", "os.exit is not available", "dofile is not available", "--lua-unsafe"} {
		if !strings.Contains(p.Stderr.String(), want) {
			t.Errorf("stderr lacks %q: %.1000q", want, p.Stderr)
		}
	}

	// A framer that reads a file at load time is refused before anything runs.
	framer := writeFile(t, "f.lua", `local t = dofile("/etc/passwd") return {decode = function() end}`)
	_, errOut, code := e2e.Run(t, "", 10*time.Second, "connect", "127.0.0.1:"+itoa(e2e.FreePort(t)), "--frame", "lua:"+framer)
	if code != 2 || !strings.Contains(errOut, "dofile is not available") {
		t.Errorf("framer with dofile: exit %d, %q", code, errOut)
	}
	// os.execute in decode ends that connection, and runs nothing.
	framer = writeFile(t, "g.lua", fmt.Sprintf(`return {decode = function(buf) os.execute("touch %s") end}`, marker))
	port = e2e.FreePort(t)
	lp := e2e.Start(t, "wirecat", "listen", "-k", "127.0.0.1:"+itoa(port), "--frame", "lua:"+framer)
	e2e.WaitListen(t, port)
	c, err := net.Dial("tcp", "127.0.0.1:"+itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "x\n")
	lp.WaitStderr("os.execute is not available", 5*time.Second)
	c.Close()
	if _, err := os.Stat(marker); err == nil {
		t.Error("os.execute in a framer ran a command")
	}
}

// SIGINT and SIGTERM end the process within a second while Lua loops with
// no budget at all (--lua-timeout 0) in a device, a framer or a hook, and the
// recording parses.
func TestLuaSignalsDuringLoops(t *testing.T) {
	limit := time.Second
	if raceEnabled {
		// A race-enabled wirecat takes more than a second to exit even when
		// idle (TestSignalIdleListener): the second is the plain binary's.
		limit = 5 * time.Second
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run("device/"+sig.String(), func(t *testing.T) {
			dev := writeFile(t, "spin.lua", `while true do end`)
			rec := filepath.Join(t.TempDir(), "s.jsonl")
			p := e2e.Start(t, "wirecat", "simulate", dev, "--count", "3", "--record", rec)
			time.Sleep(300 * time.Millisecond) // the devices are spinning
			took := p.Signal(sig, limit)
			figure(t, "signal during a device loop", "%v: exit after %v", sig, took.Round(time.Millisecond))
			parses(t, rec)
		})
		t.Run("framer/"+sig.String(), func(t *testing.T) {
			framer := writeFile(t, "spin.lua", spinFramer)
			rec := filepath.Join(t.TempDir(), "s.jsonl")
			port := e2e.FreePort(t)
			addr := "127.0.0.1:" + itoa(port)
			p := e2e.Start(t, "wirecat", "listen", "-k", addr, "--frame", "lua:"+framer, "--lua-timeout", "0", "--record", rec)
			e2e.WaitListen(t, port)
			spin(t, addr, p, "ok\n")
			took := p.Signal(sig, limit)
			figure(t, "signal during a framer loop", "%v: exit after %v", sig, took.Round(time.Millisecond))
			parses(t, rec)
		})
		t.Run("hook/"+sig.String(), func(t *testing.T) {
			hook := writeFile(t, "hooks.lua", spinHook)
			rec := filepath.Join(t.TempDir(), "s.jsonl")
			port := e2e.FreePort(t)
			addr := "127.0.0.1:" + itoa(port)
			p := e2e.Start(t, "wirecat", "relay", addr, "tcp://"+echoServer(t), "--frame", "line", "--script", hook, "--lua-timeout", "0", "--record", rec)
			e2e.WaitListen(t, port)
			spin(t, addr, p, "")
			took := p.Signal(sig, limit)
			figure(t, "signal during a hook loop", "%v: exit after %v", sig, took.Round(time.Millisecond))
			parses(t, rec)
		})
	}
}

// spin sends first (if any) and then "spin" to addr, and gives the script
// time to be deep in its loop.
func spin(t *testing.T, addr string, p *e2e.Proc, first string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if first != "" {
		io.WriteString(c, first)
		time.Sleep(100 * time.Millisecond)
	}
	io.WriteString(c, "spin\n")
	time.Sleep(300 * time.Millisecond)
	select {
	case <-p.Done():
		t.Fatalf("ended before the signal: %.500q", p.Stderr)
	default:
	}
}

// parses checks that a recording is a valid session: wirecat show reads it.
func parses(t *testing.T, rec string) {
	t.Helper()
	out, errOut, code := e2e.Run(t, "", 10*time.Second, "show", rec)
	if code != 0 {
		t.Errorf("show %s: exit %d: %s\n%s", filepath.Base(rec), code, errOut, out)
	}
}

// A memory bomb in a relay hook or in a framer: the relay lives, the other
// connections are relayed unmodified (the hook state is dropped; the
// framer's bombing connection ends), and stderr says why. No time budget
// (--lua-timeout 0): within one, the budget stops a bomb first.
func TestLuaMemoryBombHookAndFramer(t *testing.T) {
	hook := writeFile(t, "hooks.lua", `t = {}
function on_message(conn, dir, msg)
  if msg == "bomb" then while true do t[#t + 1] = string.rep("x", 1e6) end end
  return msg:upper()
end`)
	framer := writeFile(t, "bomb.lua", `return {
  decode = function(buf)
    if buf:find("bomb", 1, true) then local t = {} while true do t[#t + 1] = string.rep("x", 1e6) end end
    local i = buf:find("\n", 1, true)
    if i then return buf:sub(1, i - 1), i end
  end,
  encode = function(msg) return msg .. "\n" end,
}`)
	echo := echoServer(t)
	for _, tc := range []struct {
		name, want string
		args       []string
		before     string // what a healthy client gets back before the bomb
	}{
		{"hook", "hooks are off for every connection", []string{"--frame", "line", "--script", hook}, "HELLO\n"},
		{"framer", "bomb.lua: decode: stopped: the heap reached", []string{"--frame", "lua:" + framer}, "hello\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := e2e.FreePort(t)
			addr := "127.0.0.1:" + itoa(port)
			p := e2e.Start(t, "wirecat", append([]string{"relay", addr, "tcp://" + echo, "--lua-memory", "256MiB", "--lua-timeout", "0"}, tc.args...)...)
			e2e.WaitListen(t, port)
			healthy, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer healthy.Close()
			healthy.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(healthy)
			io.WriteString(healthy, "hello\n")
			if got, _ := r.ReadString('\n'); got != tc.before {
				t.Fatalf("before the bomb: %q", got)
			}
			bomber, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer bomber.Close()
			io.WriteString(bomber, "bomb\n")
			p.WaitStderr(tc.want, 20*time.Second)
			io.WriteString(healthy, "after\n")
			if got, _ := r.ReadString('\n'); got != "after\n" && got != "AFTER\n" {
				t.Errorf("after the bomb: %q", got)
			}
			rss := e2e.PeakRSS(p.Pid())
			figure(t, "memory bomb in a "+tc.name, "cap 256MiB: peak RSS %d MiB, the relay lives", rss>>20)
			select {
			case <-p.Done():
				t.Fatal("the relay died")
			default:
			}
		})
	}
}
