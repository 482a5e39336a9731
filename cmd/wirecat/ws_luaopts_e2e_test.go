package main

// Issue 11: Lua's net.connect and net.listen take WebSocket options per
// connection (subprotocol, headers, origin, text, ping), over simulate's
// flags; Python websockets peers check what they saw.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pyWSHeaders is a Python websockets server that prints every X-Board
// header of an upgrade, its subprotocol and origin, and each message's kind.
const pyWSHeaders = `
import asyncio, sys, websockets
async def handler(ws, path):
    h = ws.request_headers
    print("path", path, "sub", ws.subprotocol, "hdr", ",".join(h.get_all("X-Board")), "origin", h.get("Origin"), flush=True)
    async for m in ws:
        kind = "text" if isinstance(m, str) else "binary"
        data = m.encode() if isinstance(m, str) else m
        print(kind, data.hex(), flush=True)
        await ws.send(b"ack:" + data)
async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1]), subprotocols=["mqtt"]):
        print("ready", flush=True)
        await asyncio.sleep(20)
asyncio.run(main())
`

func TestWSLuaConnectOptions(t *testing.T) {
	needPy(t, "websockets")
	port := freePort(t)
	srv := start(t, debPython, pyScript(t, pyWSHeaders), fmt.Sprint(port))
	srv.waitOutput("ready", 10*time.Second)
	script := filepath.Join(t.TempDir(), "dev.lua")
	os.WriteFile(script, []byte(fmt.Sprintf(`
local url = "ws://127.0.0.1:%d"
-- One connection with its own options, one with simulate's (--header).
local c = assert(net.connect(url .. "/own", { subprotocol = "mqtt", headers = { ["X-Board"] = "7" },
  origin = "http://dash.local", text = true, ping = 2 }))
c:send("hi")
print(c:recv(5))
c:close()
local d = assert(net.connect(url .. "/flags"))
d:send("yo")
print(d:recv(5))
d:close()
-- A header that is not one is refused before anything is sent.
print(pcall(net.connect, url, { headers = { "no colon" } }))
print(pcall(net.connect, url, { ping = "often" }))
`, port)), 0o644)
	out, errOut, code := runWirecat(t, "", 20*time.Second, "simulate", script, "--header", "X-Board: 1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := []string{"ack:hi\n", "ack:yo\n", `headers: "no colon": want 'Key: Value'`, "ping must be a number of seconds"}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q: %s", w, out)
		}
	}
	srv.waitOutput("path /flags sub None hdr 1 origin None\nbinary "+hexOf("yo")+"\n", 5*time.Second)
	if got := srv.stdout.String(); !strings.Contains(got, "path /own sub mqtt hdr 1,7 origin http://dash.local\ntext "+hexOf("hi")+"\n") {
		t.Fatalf("the server saw %q", got)
	}
}

// A Python websockets client offering a subprotocol (or not) to a Lua
// listener that requires it and sends text.
const pyWSSubClient = `
import asyncio, sys, websockets
async def main():
    subs = sys.argv[2:] or None
    try:
        async with websockets.connect(sys.argv[1], subprotocols=subs) as ws:
            await ws.send(b"hi")
            m = await ws.recv()
            print("sub", ws.subprotocol, type(m).__name__, m, flush=True)
    except Exception as e:
        print("refused", e, flush=True)
asyncio.run(main())
`

func TestWSLuaListenOptions(t *testing.T) {
	needPy(t, "websockets")
	port := freePort(t)
	script := filepath.Join(t.TempDir(), "srv.lua")
	os.WriteFile(script, []byte(fmt.Sprintf(`
net.listen("ws://127.0.0.1:%d/x", { subprotocol = "mqtt", text = true }, function(conn)
  local m = conn:recv(5)
  if m then conn:send("up:" .. m:upper()) end
end)
`, port)), 0o644)
	start(t, "wirecat", "simulate", script)
	waitListen(t, port)
	url := fmt.Sprintf("ws://127.0.0.1:%d/x", port)
	c := start(t, debPython, pyScript(t, pyWSSubClient), url, "mqtt")
	c.wait(10 * time.Second)
	if got := c.stdout.String(); got != "sub mqtt str up:HI\n" {
		t.Errorf("client with the subprotocol: %q %s", got, c.stderr)
	}
	c = start(t, debPython, pyScript(t, pyWSSubClient), url)
	c.wait(10 * time.Second)
	if got := c.stdout.String(); !strings.Contains(got, "refused") || !strings.Contains(got, "400") {
		t.Errorf("client without: %q %s", got, c.stderr)
	}
}
