package relay

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/diag"
	"github.com/wirecat-dev/wirecat/script/guard"
)

// Hooks get the libraries of a device script: running a command, ending the
// process or reading a file is refused, that connection's hooks stop, and
// the relay and the message go on.
func TestHooksAreSandboxed(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	var log syncBuf
	h := hooksFrom(t, fmt.Sprintf(`function on_message(conn, dir, msg)
		if msg == "exec" then os.execute("touch %s") end
		if msg == "exit" then os.exit(0) end
		if msg == "dofile" then dofile("/etc/passwd") end
		if msg == "io" then io.open("/etc/passwd") end
		return msg:upper()
	end`, marker), &log)
	target := lineServer(t)
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Framer: lineFramer(t), Hooks: h, Log: &diag.Log{W: &log}})
	for _, m := range []string{"exec", "exit", "dofile", "io"} {
		c := dial(t, "tcp", addr)
		fmt.Fprintf(c, "%s\nnext\n", m)
		r := bufio.NewReader(c)
		a, _ := r.ReadString('\n')
		b, _ := r.ReadString('\n')
		if a != m+"\n" || b != "next\n" {
			t.Errorf("%s: got %q %q, want the messages unmodified", m, a, b)
		}
		c.Close()
	}
	c := dial(t, "tcp", addr)
	fmt.Fprintf(c, "ok\n")
	if line, _ := bufio.NewReader(c).ReadString('\n'); line != "OK\n" {
		t.Errorf("a healthy connection after them: %q", line)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("os.execute ran")
	}
	for _, want := range []string{"os.execute is not available", "os.exit is not available", "dofile is not available", "io is not available"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q: %s", want, log.String())
		}
	}
}

// A hook spinning on one connection holds the shared state for its budget:
// the other connections wait at most that long, once.
func TestSpinningHookDelaysOthersAtMostItsBudget(t *testing.T) {
	var log syncBuf
	h := hooksFrom(t, `function on_message(conn, dir, msg)
		if msg == "spin" then while true do end end
		return msg
	end`, &log)
	target := lineServer(t)
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Framer: lineFramer(t), Hooks: h, Log: &diag.Log{W: &log}})
	other := dial(t, "tcp", addr)
	r := bufio.NewReader(other)
	spinner := dial(t, "tcp", addr)
	fmt.Fprintf(spinner, "spin\n")
	time.Sleep(5 * time.Millisecond)
	var worst time.Duration
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		fmt.Fprintf(other, "ping %d\n", i)
		if line, _ := r.ReadString('\n'); line != fmt.Sprintf("ping %d\n", i) {
			t.Fatalf("got %q", line)
		}
		worst = max(worst, time.Since(t0))
	}
	// The budget, a tick of the watchdog, and room for a loaded machine.
	if limit := guard.DefaultHookTimeout + 500*time.Millisecond; worst > limit {
		t.Errorf("worst round trip beside the spinning hook %v, want under %v", worst, limit)
	}
	if !strings.Contains(log.String(), "still running after 20ms, its budget (--lua-timeout)") {
		t.Errorf("log %q", log.String())
	}
}

// A memory bomb in the shared state cannot be pinned on one connection: the
// state is dropped, every connection goes on unmodified, the relay lives.
func TestHookMemoryBombDropsTheState(t *testing.T) {
	old := guard.Current()
	guard.Set(guard.Limits{Timeout: 10 * time.Second, Memory: guard.Heap() + 128<<20})
	t.Cleanup(func() { guard.Set(old) })
	var log syncBuf
	h := hooksFrom(t, `t = {}
	function on_message(conn, dir, msg)
		if msg == "bomb" then while true do t[#t+1] = string.rep("x", 1e6) end end
		return msg:upper()
	end`, &log)
	target := lineServer(t)
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Framer: lineFramer(t), Hooks: h, Log: &diag.Log{W: &log}})
	c := dial(t, "tcp", addr)
	r := bufio.NewReader(c)
	fmt.Fprintf(c, "bomb\nafter\n")
	if a, _ := r.ReadString('\n'); a != "bomb\n" {
		t.Fatalf("got %q", a)
	}
	if b, _ := r.ReadString('\n'); b != "after\n" {
		t.Fatalf("got %q", b)
	}
	c2 := dial(t, "tcp", addr)
	fmt.Fprintf(c2, "hi\n")
	if line, _ := bufio.NewReader(c2).ReadString('\n'); line != "hi\n" {
		t.Errorf("another connection after the state was dropped: %q", line)
	}
	if !strings.Contains(log.String(), "over the Lua memory cap") || !strings.Contains(log.String(), "hooks are off for every connection") {
		t.Errorf("log %q", log.String())
	}
}

// A hook script's top level may take longer than a hook call: it runs once,
// before any traffic waits for it. A top level that never ends is stopped.
func TestHookScriptTopLevelBudget(t *testing.T) {
	var log syncBuf
	h, err := NewHooks("hooks.lua", []byte(`local t0 = os.clock()
		while os.clock() - t0 < 0.05 do end -- 50ms of setup: more than a hook call's 20ms
		function on_message(conn, dir, msg) return msg end`), &diag.Log{W: &log})
	if err != nil {
		t.Fatalf("a 50ms top level: %v", err)
	}
	h.Close()
	start := time.Now()
	_, err = NewHooks("hooks.lua", []byte(`while true do end`), &diag.Log{W: &log})
	if err == nil || !strings.Contains(err.Error(), "hooks.lua: still running after 1s, its budget (--lua-timeout)") {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("stopped after %v", took)
	}
}
