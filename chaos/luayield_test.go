package chaos

// A device script that assigns more results than a waiting call gives
// (`local c, err = net.connect(...)` that succeeded, `local m, err =
// c:recv()` that got a message) then uses them: the device crashed with
// "invalid memory address or nil pointer dereference" (a resumed coroutine's
// missing results were Go nils). The built binary runs such a script under
// `wirecat simulate` against an echo server, on three devices.

import (
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

const yieldScript = `
local function show(label, a, b) print(device.id, label, tostring(a ~= nil), tostring(b)) end
local c, err = net.connect(args.echo, {frame = "line"})         show("connect", c, err)
c:send("ping")
local m, err = c:recv(2)                                        show("recv", m, err)
local m, err = c:recv(0.05)                                     show("timeout", m, err)
c:send("a")
local m, err = c:recv_until("\n", 2)                            show("recv_until", m, err)
local r, err = sleep(0.01)                                      show("sleep", r, err)
local function get() return c:recv(2) end
c:send("b")
local m, err = get()                                            show("tail", m, err)
local l = assert(net.listen("127.0.0.1:0", {frame = "line"}, function(h)
  local m, err = h:recv(2)                                      show("handler", m, err)
end))
local cc = assert(net.connect(l:addr(), {frame = "line"}))
cc:send("hi")
sleep(0.05)
l:close()
spawn(function() local a, b = coroutine.yield()                show("yield", a, b) end)
`

func TestWaitingCallResultsSimulate(t *testing.T) {
	script := writeFile(t, "yield.lua", yieldScript)
	out, stderr, code := e2e.Run(t, "", 20*time.Second, "simulate", script, "--arg", "echo="+echoServer(t), "--count", "3")
	if code != 0 || strings.Contains(stderr, "invalid memory address") {
		t.Fatalf("exit %d\nstderr:\n%s\nstdout:\n%s", code, stderr, out)
	}
	for id := 1; id <= 3; id++ {
		for _, line := range []string{"connect\ttrue\tnil", "recv\ttrue\tnil", "timeout\tfalse\ttimeout",
			"recv_until\ttrue\tnil", "sleep\tfalse\tnil", "tail\ttrue\tnil", "handler\ttrue\tnil", "yield\tfalse\tnil"} {
			if want := itoa(id) + "\t" + line; !strings.Contains(out, want+"\n") {
				t.Errorf("device %d: no line %q in:\n%s", id, want, out)
			}
		}
	}
}
