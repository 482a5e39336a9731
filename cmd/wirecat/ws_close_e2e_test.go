package main

// Issue 11: every WebSocket close is shown with -v, recorded with its code,
// reason and sender, and shown by `wirecat show`, both ways: a Python
// websockets peer closing with 1000 "done" and 4000 "bye", and wirecat
// closing (1000, on the end of its input) as the Python peer saw it.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A Python websockets server answers one message, then closes as its path
// says (/close/CODE/REASON) or waits for the client's close; it prints the
// close frames it received and sent.
const pyWSCloser = `
import asyncio, sys, websockets
async def handler(ws, path):
    try:
        m = await ws.recv()
        await ws.send(b"ack")
        parts = path.split("/")
        if parts[1] == "close":
            await ws.close(int(parts[2]), parts[3])
        else:
            await ws.wait_closed()
    finally:
        r, s = ws.close_rcvd, ws.close_sent
        print("rcvd", r and r.code, r and r.reason, "sent", s and s.code, s and s.reason, flush=True)
async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1])):
        print("ready", flush=True)
        await asyncio.sleep(30)
asyncio.run(main())
`

// recordedClose returns the close line of a recording.
func recordedClose(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"ev":"close"`) {
			return l
		}
	}
	t.Fatalf("no close event in %s", b)
	return ""
}

func TestWSCloseCodesConnect(t *testing.T) {
	needPy(t, "websockets")
	port := freePort(t)
	srv := start(t, debPython, pyScript(t, pyWSCloser), fmt.Sprint(port))
	srv.waitOutput("ready", 10*time.Second)
	dir := t.TempDir()
	for _, c := range []struct {
		path, verbose, close, show string
		exit                       int
	}{
		{"/close/4000/bye", `ws: ws://127.0.0.1:%d/close/4000/bye closed the WebSocket with 4000 (application) "bye"`,
			`"by":"server","code":4000,"reason":"bye","error":`, `closed by peer with code 4000 "bye": `, 1},
		{"/close/1000/done", `ws: ws://127.0.0.1:%d/close/1000/done closed the WebSocket with 1000 (normal) "done"`,
			`"by":"server","code":1000,"reason":"done"}`, `closed by peer with code 1000 "done"` + "\n", 0},
		// wirecat closes, once its input is done and the linger passed: 1000.
		{"/wait", `ws: closing the WebSocket to ws://127.0.0.1:%d/wait with 1000 (normal)`,
			`"by":"client","code":1000}`, "closed by wirecat with code 1000\n", 0},
	} {
		rec := filepath.Join(dir, strings.ReplaceAll(c.path, "/", "_")+".jsonl")
		out, errOut, code := runWirecat(t, "hi", 10*time.Second, "connect", fmt.Sprintf("ws://127.0.0.1:%d%s", port, c.path), "-v", "--record", rec)
		if code != c.exit || out != "ack\n" {
			t.Fatalf("%s: exit %d (want %d), stdout %q: %s", c.path, code, c.exit, out, errOut)
		}
		if want := fmt.Sprintf(c.verbose, port); !strings.Contains(errOut, want) {
			t.Errorf("%s: -v does not say %q:\n%s", c.path, want, errOut)
		}
		if got := recordedClose(t, rec); !strings.Contains(got, c.close) {
			t.Errorf("%s: recorded %s, want %s", c.path, got, c.close)
		}
		shown, errOut, code := runWirecat(t, "", 10*time.Second, "show", rec)
		if code != 0 || !strings.Contains(shown, c.show) {
			t.Errorf("%s: show (exit %d) printed %q, want %q: %s", c.path, code, shown, c.show, errOut)
		}
	}
	// What the Python server saw of each close.
	srv.waitOutput("rcvd 1000  sent 1000 \n", 5*time.Second)
	for _, want := range []string{"rcvd 4000 bye sent 4000 bye\n", "rcvd 1000 done sent 1000 done\n"} {
		if !strings.Contains(srv.stdout.String(), want) {
			t.Errorf("the server did not print %q: %s", want, srv.stdout)
		}
	}
}

// A Python websockets client closes on a listener with 4000 "bye"; the
// listener records it as the client's close; a listener whose input ends
// closes with 1000, which the client receives.
const pyWSCloseClient = `
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1]) as ws:
        await ws.send(b"hi")
        if len(sys.argv) > 2:
            await ws.recv()
            await ws.close(int(sys.argv[2]), sys.argv[3])
        else:
            async for m in ws:
                pass
        r = ws.close_rcvd
        print("rcvd", r and r.code, r and r.reason, flush=True)
asyncio.run(main())
`

func TestWSCloseCodesListen(t *testing.T) {
	needPy(t, "websockets")
	dir := t.TempDir()
	port := freePort(t)
	rec := filepath.Join(dir, "exec.jsonl")
	start(t, "wirecat", "listen", "-k", fmt.Sprintf("ws://127.0.0.1:%d/x", port), "--exec", "cat", "--record", rec)
	waitListen(t, port)
	cl := start(t, debPython, pyScript(t, pyWSCloseClient), fmt.Sprintf("ws://127.0.0.1:%d/x", port), "4000", "bye")
	if code := cl.wait(10 * time.Second); code != 0 {
		t.Fatalf("client exit %d: %s", code, cl.stderr)
	}
	waitFor(t, 5*time.Second, "the close recorded", func() bool {
		b, _ := os.ReadFile(rec)
		return strings.Contains(string(b), `"ev":"close"`)
	})
	if got := recordedClose(t, rec); !strings.Contains(got, `"by":"client","code":4000,"reason":"bye"`) {
		t.Errorf("recorded %s", got)
	}

	// The listener's input ends: it closes with 1000 once the linger passed.
	port = freePort(t)
	rec = filepath.Join(dir, "listen.jsonl")
	l := startIn(t, strings.NewReader("hello\n"), "wirecat", "listen", fmt.Sprintf("ws://127.0.0.1:%d/y", port), "--record", rec, "-v")
	waitListen(t, port)
	cl = start(t, debPython, pyScript(t, pyWSCloseClient), fmt.Sprintf("ws://127.0.0.1:%d/y", port))
	if code := cl.wait(10 * time.Second); code != 0 {
		t.Fatalf("client exit %d: %s", code, cl.stderr)
	}
	if got := cl.stdout.String(); got != "rcvd 1000 \n" {
		t.Errorf("the client received %q, want a 1000 close", got)
	}
	if code := l.wait(10 * time.Second); code != 0 {
		t.Fatalf("listener exit %d: %s", code, l.stderr)
	}
	if got := recordedClose(t, rec); !strings.Contains(got, `"by":"server","code":1000}`) {
		t.Errorf("recorded %s", got)
	}
	if !strings.Contains(l.stderr.String(), "ws: closing the WebSocket to 127.0.0.1:") {
		t.Errorf("-v did not show the close: %s", l.stderr)
	}
}

// A Lua device's WebSocket close is recorded the same way.
func TestWSCloseCodesLua(t *testing.T) {
	needPy(t, "websockets")
	port := freePort(t)
	srv := start(t, debPython, pyScript(t, pyWSCloser), fmt.Sprint(port))
	srv.waitOutput("ready", 10*time.Second)
	dir := t.TempDir()
	script, rec := filepath.Join(dir, "dev.lua"), filepath.Join(dir, "lua.jsonl")
	os.WriteFile(script, []byte(fmt.Sprintf(`local c = assert(net.connect("ws://127.0.0.1:%d/close/4000/bye"))
c:send("hi")
print(c:recv(5))
print(c:recv(5))
`, port)), 0o644)
	out, errOut, code := runWirecat(t, "", 20*time.Second, "simulate", script, "--record", rec)
	if code != 0 || !strings.Contains(out, `closed the WebSocket with 4000 (application) "bye"`) {
		t.Fatalf("exit %d, stdout %q: %s", code, out, errOut)
	}
	if got := recordedClose(t, rec); !strings.Contains(got, `"by":"server","code":4000,"reason":"bye"`) {
		t.Errorf("recorded %s", got)
	}
}

// A Python websockets server that reads nothing for 1.5 s (its queue of
// 32 messages fills, so it stops reading the socket), then reads on: the
// close wirecat sends when its input is done waits behind the backlog.
const pyWSSlowReader = `
import asyncio, sys, websockets
async def handler(ws, path):
    await asyncio.sleep(1.5)
    n = 0
    try:
        async for m in ws:
            n += 1
    except websockets.ConnectionClosed:
        pass
    r, s = ws.close_rcvd, ws.close_sent
    print(n, "rcvd", r and r.code, "sent", s and s.code, flush=True)
async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1])):
        print("ready", flush=True)
        await asyncio.sleep(30)
asyncio.run(main())
`

// wirecat waits for a slow peer's answer to its close once its input is
// done (not just half a second), so the close handshake completes; a
// signal still ends it at once.
func TestWSCloseWaitsForSlowPeer(t *testing.T) {
	needPy(t, "websockets")
	port := freePort(t)
	srv := start(t, debPython, pyScript(t, pyWSSlowReader), fmt.Sprint(port))
	srv.waitOutput("ready", 10*time.Second)
	lines := strings.Repeat("x\n", 200)
	_, errOut, code := runWirecat(t, lines, 15*time.Second, "connect", fmt.Sprintf("ws://127.0.0.1:%d/", port), "-i", "lines")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	srv.waitOutput(" rcvd ", 10*time.Second)
	if got := srv.stdout.String(); got != "ready\n200 rcvd 1000 sent 1000\n" {
		t.Fatalf("the server said %q, want every message and a completed close handshake", got)
	}

	// Interrupted while it waits: it ends within a second.
	c := startIn(t, strings.NewReader(lines), "wirecat", "connect", fmt.Sprintf("ws://127.0.0.1:%d/", port), "-i", "lines", "-v")
	c.waitStderr("ws: closing the WebSocket", 10*time.Second)
	begin := time.Now()
	c.cmd.Process.Signal(os.Interrupt)
	c.wait(5 * time.Second)
	if d := time.Since(begin); d > time.Second {
		t.Fatalf("SIGINT during the close took %v", d)
	}
}
