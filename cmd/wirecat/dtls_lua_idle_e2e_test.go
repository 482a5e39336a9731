package main

// Issue 11, DTLS: a Lua net.listen("dtls://…") ends an association nothing
// crossed for opts.idle seconds (5 minutes by default, as listen -k), with
// close_notify, which openssl s_client -dtls1_2 -psk hears and exits on.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

func TestDTLSLuaListenIdle(t *testing.T) {
	need(t, "openssl")
	port := freeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	lua := filepath.Join(t.TempDir(), "echo.lua")
	src := fmt.Sprintf(`
assert(net.listen("dtls://%s", { psk = %q, psk_identity = %q, idle = 1 }, function(conn)
  while true do
    local m, err = conn:recv()
    if not m then print("ended", err) return end
    conn:send(m)
  end
end))
print("ready")
`, addr, testPSK, testIdentity)
	if err := os.WriteFile(lua, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	sim := start(t, "wirecat", "simulate", lua)
	sim.waitOutput("ready\n", 10*time.Second)
	waitUDP(t, port)
	base := e2e.FDs(sim.cmd.Process.Pid)

	for i := 1; i <= 2; i++ { // the listener serves on after an idle end
		cl := start(t, "openssl", "s_client", "-dtls1_2", "-connect", addr, "-psk", testPSK, "-psk_identity", testIdentity, "-quiet")
		msg := fmt.Sprintf("hello %d\n", i)
		io.WriteString(cl.stdin, msg)
		cl.waitOutput(msg, 10*time.Second)
		echoed := time.Now()
		// stdin stays open: only the listener's close_notify ends s_client.
		if code := cl.wait(10 * time.Second); code != 0 {
			t.Fatalf("client %d: s_client exit %d: %s", i, code, cl.stderr)
		}
		if took := time.Since(echoed); took < 900*time.Millisecond {
			t.Fatalf("client %d: ended %v after the echo, before opts.idle (1s)", i, took)
		} else {
			t.Logf("client %d: association ended %v after its last record (opts.idle 1s)", i, took.Round(time.Millisecond))
		}
		waitFor(t, 5*time.Second, "the handler's end", func() bool { return strings.Count(sim.stdout.String(), "ended\tidle\n") == i })
		var fds int
		waitFor(t, 5*time.Second, "the descriptors back", func() bool {
			fds = e2e.FDs(sim.cmd.Process.Pid)
			return fds <= base
		})
	}
	if !strings.Contains(sim.stdout.String(), "ended\tidle\n") {
		t.Errorf("the handler did not hear the idle end: %s", sim.stdout)
	}
}
