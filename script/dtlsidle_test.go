package script

import (
	"io"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/internal/e2e"
	"github.com/wirecat-dev/wirecat/link"
)

// TestNetListenDTLSIdle: a DTLS net.listen ends an association nothing
// crossed for opts.idle seconds: the client hears close_notify, the
// handler's recv says "idle", the connection is gone from the device (not
// counted as an error), and the listener serves the next client.
func TestNetListenDTLSIdle(t *testing.T) {
	src := `
local l = assert(net.listen("dtls://127.0.0.1:0", { psk = "c0ffee", psk_identity = "dev1", idle = 0.5 }, function(conn)
  while true do
    local m, err = conn:recv()
    if not m then print("ended", err) return end
    conn:send(m)
  end
end))
print(l:addr())
sleep(4)
l:close()
`
	p, err := Compile("idle.lua", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuf
	env := &Env{Count: 1, Stdout: &out}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextTimeout(10 * time.Second)
		defer cancel()
		done <- p.Run(ctx, 1, env)
	}()
	e2e.WaitFor(t, 5*time.Second, "the listener's address", func() bool { return strings.Contains(out.String(), "\n") })
	a, err := link.Parse("dtls://"+strings.TrimSpace(out.String()), false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second client: the listener still serves after an idle end
		ctx, cancel := contextTimeout(5 * time.Second)
		nc, err := link.Dial(ctx, a, &link.Options{TLS: link.TLSOptions{PSK: "c0ffee", PSKIdentity: "dev1"}})
		cancel()
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		nc.Write([]byte("ping"))
		b := make([]byte, 64)
		nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		if n, err := nc.Read(b); err != nil || string(b[:n]) != "ping" {
			t.Fatalf("client %d: echo %q, %v", i, b[:n], err)
		}
		if up := env.stats().Up.Load(); up != 1 {
			t.Fatalf("client %d: %d devices up during the association, want 1", i, up)
		}
		start := time.Now()
		if _, err := nc.Read(b); err != io.EOF {
			t.Fatalf("client %d: after the idle time read %v, want close_notify (EOF)", i, err)
		}
		if took := time.Since(start); took < 400*time.Millisecond {
			t.Fatalf("client %d: ended after %v, before opts.idle", i, took)
		}
		nc.Close()
		e2e.WaitFor(t, 3*time.Second, "the handler's end", func() bool { return strings.Count(out.String(), "ended\tidle\n") == i+1 })
		e2e.WaitFor(t, 3*time.Second, "the connection gone", func() bool { return env.stats().Up.Load() == 0 })
	}
	if n := env.stats().Errors.Load(); n != 0 {
		t.Errorf("%d errors counted: an idle end is no failure", n)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDTLSIdleOption: opts.idle's default is listen -k's, and a bad one is
// refused.
func TestDTLSIdleOption(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	idle := func(src string) (d time.Duration, err error) {
		if err := L.DoString("opts = " + src); err != nil {
			t.Fatal(err)
		}
		opts, _ := L.GetGlobal("opts").(*lua.LTable)
		L.Push(L.NewFunction(func(L *lua.LState) int { d = dtlsIdle(L, opts); return 0 }))
		err = L.PCall(0, 0, nil)
		return d, err
	}
	for src, want := range map[string]time.Duration{"nil": link.DefaultDTLSIdle, "{}": link.DefaultDTLSIdle,
		"{ idle = 2.5 }": 2500 * time.Millisecond, "{ idle = 3600 }": time.Hour} {
		if d, err := idle(src); err != nil || d != want {
			t.Errorf("%s: %v, %v; want %v", src, d, err, want)
		}
	}
	for _, src := range []string{"{ idle = 0 }", "{ idle = -1 }", `{ idle = "5m" }`, "{ idle = 1e12 }"} {
		if _, err := idle(src); err == nil || !strings.Contains(err.Error(), "idle: seconds") {
			t.Errorf("%s: %v, want refused", src, err)
		}
	}
}
