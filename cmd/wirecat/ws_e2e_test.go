package main

// Issue 11 (WebSocket half): ws:// and wss:// against Python websockets
// (client and server), MQTT over WebSocket through `relay ws://… tcp://…`
// to a real mosquitto read by mosquitto_sub (and the same through wss://
// with a CA made by openssl), and the bad inputs: a refused upgrade, a
// wrong subprotocol, a message over --max-frame, a peer that never answers
// a ping.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/testpeer"
)

// debPython is Debian's python, where python3-websockets and
// python3-paho-mqtt import (the pyenv python3 first on PATH has neither).
const debPython = "/usr/bin/python3"

// needPy skips (fails in CI) unless debPython imports every module.
func needPy(t *testing.T, modules ...string) {
	t.Helper()
	need(t, debPython)
	for _, m := range modules {
		if out, err := exec.Command(debPython, "-c", "import "+m).CombinedOutput(); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("python module %s is required in CI: %s", m, out)
			}
			t.Skipf("python module %s missing: %s", m, out)
		}
	}
}

// pyScript writes a Python script into the test's directory.
func pyScript(t *testing.T, src string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "peer.py")
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// A Python websockets server records what wirecat sends (type and bytes)
// and what its upgrade request said, and answers each message.
const pyWSServer = `
import asyncio, sys, websockets
async def handler(ws, path):
    h = ws.request_headers
    print("path", path, "sub", ws.subprotocol, "hdr", h.get("X-Board"), "origin", h.get("Origin"), flush=True)
    async for m in ws:
        kind = "text" if isinstance(m, str) else "binary"
        data = m.encode() if isinstance(m, str) else m
        print(kind, data.hex(), flush=True)
        await ws.send(b"ack:" + data)
async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1]), subprotocols=["mqtt"] if len(sys.argv) > 2 else None):
        print("ready", flush=True)
        await asyncio.sleep(20)
asyncio.run(main())
`

func TestWSConnectPythonServer(t *testing.T) {
	needPy(t, "websockets")
	port := freePort(t)
	srv := start(t, debPython, pyScript(t, pyWSServer), fmt.Sprint(port), "sub")
	srv.waitOutput("ready", 10*time.Second)
	url := fmt.Sprintf("ws://127.0.0.1:%d/board/1?x=1", port)

	// Each stdin line is one binary message; each answer one line out.
	out, errOut, code := runWirecat(t, "hello\nwirecat\n", 10*time.Second, "connect", url, "-i", "lines",
		"--subprotocol", "mqtt", "--header", "X-Board: 7", "--origin", "http://dash.local")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != "ack:hello\nack:wirecat\n" {
		t.Fatalf("stdout %q", out)
	}
	srv.waitOutput(hexOf("wirecat"), 5*time.Second)
	want := "path /board/1?x=1 sub mqtt hdr 7 origin http://dash.local\nbinary " + hexOf("hello") + "\nbinary " + hexOf("wirecat") + "\n"
	if got := srv.stdout.String(); !strings.HasPrefix(got, "ready\n"+want) {
		t.Fatalf("server saw %q, want %q", got, want)
	}

	// --ws-text sends text messages; raw stdin is one message per read.
	out, errOut, code = runWirecat(t, "héllo", 10*time.Second, "connect", url, "--ws-text")
	if code != 0 || out != "ack:héllo\n" {
		t.Fatalf("exit %d, stdout %q: %s", code, out, errOut)
	}
	srv.waitOutput("text "+hexOf("héllo"), 5*time.Second)
}

func hexOf(s string) string { return fmt.Sprintf("%x", s) }

// A Python websockets client sends messages around every buffer boundary
// to `listen -k --exec cat` and checks each comes back whole, alone.
const pyWSClient = `
import asyncio, os, sys, websockets
async def main():
    sizes = [int(s) for s in sys.argv[2].split(",")]
    async with websockets.connect(sys.argv[1], max_size=None) as ws:
        for n in sizes:
            m = os.urandom(n)
            await ws.send(m)
            back = await ws.recv()
            assert back == m, (n, len(back))
        print("ok", len(sizes), flush=True)
asyncio.run(main())
`

func TestWSListenPythonClient(t *testing.T) {
	needPy(t, "websockets")
	port := freePort(t)
	start(t, "wirecat", "listen", "-k", fmt.Sprintf("ws://127.0.0.1:%d/echo", port), "--exec", "cat", "--max-frame", "2MiB")
	waitListen(t, port)
	// --exec's command is a byte stream: each read of its output (up to
	// 32 KiB) is one message, so a message under that, sent one at a time,
	// comes back whole.
	sizes := "1,2,100,4095,4096,4097,32000"
	c := start(t, debPython, pyScript(t, pyWSClient), fmt.Sprintf("ws://127.0.0.1:%d/echo", port), sizes)
	if code := c.wait(20 * time.Second); code != 0 {
		t.Fatalf("python client exit %d: %s", code, c.stderr)
	}
	if got := c.stdout.String(); got != "ok 7\n" {
		t.Fatalf("client said %q", got)
	}

	// Other paths are plain 404s, and the listener keeps serving.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/other", port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("GET /other: %s", resp.Status)
	}
	_, errOut, code := runWirecat(t, "x", 10*time.Second, "connect", fmt.Sprintf("ws://127.0.0.1:%d/nope", port))
	if code == 0 || !strings.Contains(errOut, `upgrade refused: 404 Not Found: "404 page not found (WebSocket on /echo)"`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Count(errOut, "wirecat:") != 1 {
		t.Fatalf("want one line: %q", errOut)
	}
	c = start(t, debPython, pyScript(t, pyWSClient), fmt.Sprintf("ws://127.0.0.1:%d/echo", port), "5")
	if code := c.wait(20 * time.Second); code != 0 {
		t.Fatalf("second client exit %d: %s", code, c.stderr)
	}
}

// Large messages both ways, exact: wirecat connect sends files of sizes
// around the 64 KiB read and the 1 MiB --max-frame to a Python server
// that hashes them.
func TestWSLargeMessagesExact(t *testing.T) {
	needPy(t, "websockets")
	port := freePort(t)
	srv := start(t, debPython, pyScript(t, `
import asyncio, hashlib, sys, websockets
async def handler(ws, path):
    async for m in ws:
        print(len(m), hashlib.sha256(m).hexdigest(), flush=True)
        await ws.send(m)
async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1]), max_size=None):
        print("ready", flush=True)
        await asyncio.sleep(20)
asyncio.run(main())
`), fmt.Sprint(port))
	srv.waitOutput("ready", 10*time.Second)
	for _, n := range []int{65535, 65536, 65537, 1<<20 - 1, 1 << 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := strings.Repeat("w", n-1) + "!"
			// -i lines would split nothing here; a whole line is one message.
			p := startIn(t, strings.NewReader(data+"\n"), "wirecat", "connect", fmt.Sprintf("ws://127.0.0.1:%d/", port), "-i", "lines", "-o", "raw")
			if code := p.wait(10 * time.Second); code != 0 {
				t.Fatalf("exit %d: %s", code, p.stderr)
			}
			// -o raw: the bytes of each message as they are, no newline added.
			if got := p.stdout.String(); got != data {
				t.Fatalf("got %d bytes back, want %d", len(got), n)
			}
			srv.waitOutput(fmt.Sprintf("%d ", n), 5*time.Second)
		})
	}
}

// mosquittoOn starts a real mosquitto on a free loopback TCP port.
func mosquittoOn(t *testing.T) int {
	t.Helper()
	need(t, "mosquitto", "mosquitto_sub")
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)), 0o644)
	start(t, "mosquitto", "-c", conf)
	waitListen(t, port)
	return port
}

// paho-mqtt publishes over WebSocket; its output is "published N".
const pyPaho = `
import ssl, sys, paho.mqtt.client as mqtt
host, port, path, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = mqtt.Client(client_id="board-7", transport="websockets")
c.ws_set_options(path=path)
if ca:
    c.tls_set(ca_certs=ca)
c.connect(host, port, keepalive=30)
c.loop_start()
n = 0
for i in range(3):
    c.publish("wirecat/t", "reading %d" % i, qos=1).wait_for_publish(5)
    n += 1
c.disconnect()
c.loop_stop()
print("published", n, flush=True)
`

func TestWSMQTTRelayMosquitto(t *testing.T) {
	needPy(t, "paho.mqtt.client")
	broker := mosquittoOn(t)
	for _, tc := range []struct{ name, scheme string }{{"ws", "ws"}, {"wss", "wss"}} {
		t.Run(tc.name, func(t *testing.T) {
			sub := start(t, "mosquitto_sub", "-h", "127.0.0.1", "-p", fmt.Sprint(broker), "-t", "wirecat/#", "-C", "3", "-v")
			time.Sleep(300 * time.Millisecond) // the subscription is in place
			ws := freePort(t)
			args := []string{"relay", fmt.Sprintf("%s://127.0.0.1:%d/mqtt", tc.scheme, ws), fmt.Sprintf("tcp://127.0.0.1:%d", broker), "--subprotocol", "mqtt"}
			ca, host := "", "127.0.0.1"
			if tc.scheme == "wss" {
				p := makePKI(t)
				args = append(args, "--cert", p.srv, "--key", p.srvKey)
				ca, host = p.ca, "localhost"
			}
			start(t, "wirecat", args...)
			waitListen(t, ws)
			pub := start(t, debPython, pyScript(t, pyPaho), host, fmt.Sprint(ws), "/mqtt", ca)
			if code := pub.wait(20 * time.Second); code != 0 {
				t.Fatalf("paho exit %d: %s", code, pub.stderr)
			}
			if code := sub.wait(10 * time.Second); code != 0 {
				t.Fatalf("mosquitto_sub exit %d: %s", code, sub.stderr)
			}
			want := "wirecat/t reading 0\nwirecat/t reading 1\nwirecat/t reading 2\n"
			if got := sub.stdout.String(); got != want {
				t.Fatalf("mosquitto_sub got %q, want %q", got, want)
			}
		})
	}
}

// wss with the ephemeral certificate: the client pins it; an unpinned
// client is refused with one line naming the unknown authority.
func TestWSSPinAndRefusal(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("wss://127.0.0.1:%d/s", port)
	wc := start(t, "wirecat", "listen", "-k", addr, "--exec", "cat")
	waitListen(t, port)
	wc.waitStderr("sha256:", 10*time.Second)
	fp := fingerprintRE.FindString(wc.stderr.String())
	_, errOut, code := runWirecat(t, "x", 10*time.Second, "connect", addr)
	if code == 0 || !strings.Contains(errOut, "unknown authority") || strings.Count(errOut, "wirecat:") > 2 {
		t.Fatalf("unpinned: exit %d: %q", code, errOut)
	}
	out, errOut, code := runWirecat(t, "pinned", 10*time.Second, "connect", addr, "--pin", fp)
	if code != 0 || out != "pinned\n" {
		t.Fatalf("pinned: exit %d, %q: %s", code, out, errOut)
	}
}

// A wrong subprotocol and a message over --max-frame: one line each, and
// the listener serves the next client.
func TestWSBadPeers(t *testing.T) {
	needPy(t, "websockets")
	port := freePort(t)
	url := fmt.Sprintf("ws://127.0.0.1:%d/x", port)
	wc := start(t, "wirecat", "listen", "-k", url, "--subprotocol", "mqtt", "--max-frame", "100")
	waitListen(t, port)

	_, errOut, code := runWirecat(t, "x", 10*time.Second, "connect", url, "--subprotocol", "coap")
	if code == 0 || !strings.Contains(errOut, `upgrade refused: 400 Bad Request: "subprotocol \"mqtt\" required"`) {
		t.Fatalf("wrong subprotocol: exit %d: %q", code, errOut)
	}
	wc.waitStderr(`did not offer subprotocol "mqtt" (offered "coap")`, 5*time.Second)

	big := start(t, debPython, pyScript(t, `
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1], subprotocols=["mqtt"]) as ws:
        await ws.send(b"x" * 200)
        try:
            await ws.recv()
        except Exception as e:
            print("closed", ws.close_code, flush=True)
asyncio.run(main())
`), url)
	if code := big.wait(10 * time.Second); code != 0 || big.stdout.String() != "closed 1009\n" {
		t.Fatalf("over --max-frame: exit %d, %q: %s", code, big.stdout, big.stderr)
	}
	wc.waitStderr("over 100 bytes (--max-frame)", 5*time.Second)

	_, errOut, code = runWirecat(t, "fine", 10*time.Second, "connect", url, "--subprotocol", "mqtt")
	if code != 0 {
		t.Fatalf("next client: exit %d: %s", code, errOut)
	}
	wc.waitOutput("fine\n", 5*time.Second)
}

// A peer that upgrades and then never reads (so never answers a ping):
// --ws-ping drops it with one line, well within a second of the pong
// falling due.
func TestWSPingUnanswered(t *testing.T) {
	addr := testpeer.TCP(t, func(c net.Conn) {
		if testpeer.WSUpgrade(c) == nil {
			time.Sleep(5 * time.Second) // silent: reads nothing, answers nothing
		}
	})
	p := start(t, "wirecat", "connect", "ws://"+addr+"/", "--ws-ping", "200ms", "--recv-only")
	t0 := time.Now()
	code := p.wait(5 * time.Second)
	took := time.Since(t0)
	errOut := p.stderr.String()
	if code == 0 || !strings.Contains(errOut, "did not answer a ping within 200ms (--ws-ping)") || strings.Count(errOut, "wirecat:") != 1 {
		t.Fatalf("exit %d: %q", code, errOut)
	}
	if took > 2*time.Second {
		t.Fatalf("took %v to notice", took)
	}
}

// Lua's net.connect speaks ws:// too: the LED board of scripts/ (line
// framing inside each message) obeys a listener over WebSocket.
func TestWSLuaDevice(t *testing.T) {
	port := freePort(t)
	url := fmt.Sprintf("ws://127.0.0.1:%d/led", port)
	srv := start(t, "wirecat", "listen", url, "--frame", "line", "--send", "LED ON", "--until", "STATE ON", "--wait", "10s")
	waitListen(t, port)
	dev := start(t, "wirecat", "simulate", "../../scripts/led-board.lua", "--connect", url)
	if code := srv.wait(15 * time.Second); code != 0 {
		t.Fatalf("listener exit %d: %s", code, srv.stderr)
	}
	dev.wait(10 * time.Second)
	if got := srv.stdout.String(); !strings.Contains(got, "STATE OFF\nSTATE ON\n") {
		t.Fatalf("listener got %q", got)
	}
}

// Lua's net.listen serves ws:// too: each message is one message.
func TestWSLuaListen(t *testing.T) {
	port := freePort(t)
	script := filepath.Join(t.TempDir(), "echo.lua")
	os.WriteFile(script, []byte(`
net.listen("ws://127.0.0.1:`+fmt.Sprint(port)+`/up", function(conn)
  while true do
    local m = conn:recv()
    if not m then return end
    conn:send("up:" .. m:upper())
  end
end)
`), 0o644)
	start(t, "wirecat", "simulate", script)
	waitListen(t, port)
	out, errOut, code := runWirecat(t, "ab\ncd\n", 10*time.Second, "connect", fmt.Sprintf("ws://127.0.0.1:%d/up", port), "-i", "lines")
	if code != 0 || out != "up:AB\nup:CD\n" {
		t.Fatalf("exit %d, %q: %s", code, out, errOut)
	}
}

// send speaks ws:// too (a Python websockets server answers "ack:..."),
// and a listener with --origin refuses other origins with one line.
func TestWSSendAndOrigin(t *testing.T) {
	needPy(t, "websockets")
	port := freePort(t)
	srv := start(t, debPython, pyScript(t, pyWSServer), fmt.Sprint(port))
	srv.waitOutput("ready", 10*time.Second)
	out, errOut, code := runWirecat(t, "", 10*time.Second, "send", fmt.Sprintf("ws://127.0.0.1:%d/s", port), "hello", "--until", "ack:hello")
	if code != 0 || !strings.Contains(out, "ack:hello") {
		t.Fatalf("send: exit %d, %q: %s", code, out, errOut)
	}

	lport := freePort(t)
	url := fmt.Sprintf("ws://127.0.0.1:%d/o", lport)
	l := start(t, "wirecat", "listen", "-k", url, "--origin", "https://dash.example")
	waitListen(t, lport)
	_, errOut, code = runWirecat(t, "x", 10*time.Second, "connect", url, "--origin", "https://evil.example")
	if code == 0 || !strings.Contains(errOut, "upgrade refused: 403 Forbidden") {
		t.Fatalf("wrong origin: exit %d: %q", code, errOut)
	}
	l.waitStderr(`refused: request Origin "evil.example" is not authorized`, 5*time.Second)
	if _, errOut, code = runWirecat(t, "ok", 10*time.Second, "connect", url, "--origin", "https://dash.example"); code != 0 {
		t.Fatalf("right origin: exit %d: %s", code, errOut)
	}
	l.waitOutput("ok\n", 5*time.Second)
}

// A recorded WebSocket session replays against the server (--to gives the
// URL: a recording keeps host and port, not the path) and as a mock server.
func TestWSReplay(t *testing.T) {
	port := freePort(t)
	url := fmt.Sprintf("ws://127.0.0.1:%d/r", port)
	start(t, "wirecat", "listen", "-k", url, "--exec", "sed -u s/^/ack:/")
	waitListen(t, port)
	rec := filepath.Join(t.TempDir(), "ws.jsonl")
	if out, errOut, code := runWirecat(t, "one\ntwo\n", 10*time.Second, "connect", url, "--record", rec, "-o", "raw"); code != 0 || out != "ack:one\nack:two\n" {
		t.Fatalf("record: exit %d, %q: %s", code, out, errOut)
	}
	if _, errOut, code := runWirecat(t, "", 10*time.Second, "replay", rec, "--to", url, "--check"); code != 0 {
		t.Fatalf("replay --check: exit %d: %s", code, errOut)
	}
	// The recording as a mock server, on a WebSocket of its own.
	mport := freePort(t)
	murl := fmt.Sprintf("ws://127.0.0.1:%d/mock", mport)
	start(t, "wirecat", "replay", rec, "--as", "server", "--listen", murl, "--once")
	waitListen(t, mport)
	out, errOut, code := runWirecat(t, "one\ntwo\n", 10*time.Second, "connect", murl, "-o", "raw")
	if code != 0 || out != "ack:one\nack:two\n" {
		t.Fatalf("the mock: exit %d, %q: %s", code, out, errOut)
	}
}

// relay to a WebSocket target: with --frame line each line from the TCP
// board is one WebSocket message (no newline), as the listener shows.
func TestWSRelayToWebSocketTarget(t *testing.T) {
	wsPort, tcpPort := freePort(t), freePort(t)
	l := start(t, "wirecat", "listen", fmt.Sprintf("ws://127.0.0.1:%d/in", wsPort), "-o", "json")
	waitListen(t, wsPort)
	start(t, "wirecat", "relay", fmt.Sprintf("tcp://127.0.0.1:%d", tcpPort), fmt.Sprintf("ws://127.0.0.1:%d/in", wsPort), "--frame", "line")
	waitListen(t, tcpPort)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "temp 21.5\nhum 40\n")
	l.waitOutput(`"text":"hum 40"`, 10*time.Second)
	if got := l.stdout.String(); !strings.Contains(got, `"text":"temp 21.5"}`) || strings.Contains(got, `\n`) {
		t.Fatalf("listener got %s", got)
	}
}

// simulate's WebSocket flags are the defaults of every net.connect: the
// Python server sees the device's subprotocol, header and origin.
func TestWSSimulateFlagsReachDevices(t *testing.T) {
	needPy(t, "websockets")
	port := freePort(t)
	srv := start(t, debPython, pyScript(t, pyWSServer), fmt.Sprint(port), "sub")
	srv.waitOutput("ready", 10*time.Second)
	script := filepath.Join(t.TempDir(), "dev.lua")
	os.WriteFile(script, []byte(`local c = assert(net.connect(TARGET))
c:send("hi")
assert(c:recv(5))
`), 0o644)
	url := fmt.Sprintf("ws://127.0.0.1:%d/dev", port)
	_, errOut, code := runWirecat(t, "", 20*time.Second, "simulate", script, "--connect", url,
		"--subprotocol", "mqtt", "--header", "X-Board: 9", "--origin", "http://fleet.local")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	srv.waitOutput("path /dev sub mqtt hdr 9 origin http://fleet.local\n", 5*time.Second)
}
