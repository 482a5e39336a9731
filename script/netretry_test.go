package script

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/link"
)

// TestConnectRetry: net.connect's retry option waits for a server that comes
// up late, reports each failed attempt with -v, and gives up when told.
func TestConnectRetry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens for now
	go func() {
		time.Sleep(300 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		defer ln.Close()
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	r := run(t, fmt.Sprintf(`
local c = assert(net.connect(%q, { retry = "forever", frame = "line" }))
print(c:recv())`, addr), 10*time.Second, &Env{Verbose: true})
	if r.err != nil || r.out != "hello\n" {
		t.Fatalf("out %q, err %v, stderr %s", r.out, r.err, r.errOut)
	}
	if !strings.Contains(r.errOut, "device 1: debug: net.connect tcp://"+addr+": attempt 1 failed: connection refused; trying again in") {
		t.Errorf("stderr: %s", r.errOut)
	}

	r = run(t, `print(net.connect("127.0.0.1:1", { retry = 2, timeout = 1 }))`, 10*time.Second, &Env{})
	if !strings.Contains(r.out, "connection refused (gave up after 3 attempts)") {
		t.Errorf("out %q, err %v", r.out, r.err)
	}
	r = run(t, `print(net.connect("127.0.0.1:1", { retry = "often" }))`, 10*time.Second, &Env{})
	if r.err == nil || !strings.Contains(r.err.Error(), `retry: want a count of retries (0, 5...) or "forever"`) {
		t.Errorf("bad retry: %v", r.err)
	}
}

// TestConnectProxy: opts.proxy and the run's default, through microsocks.
func TestConnectProxy(t *testing.T) {
	bin := needTool(t, "microsocks")
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pport := fmt.Sprint(pl.Addr().(*net.TCPAddr).Port)
	pl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	cmd := exec.CommandContext(ctx, bin, "-i", "127.0.0.1", "-p", pport)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", "127.0.0.1:"+pport)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatal("microsocks did not listen")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for i := 0; i < 2; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("via " + c.RemoteAddr().String() + "\n"))
			c.Close()
		}
	}()
	src := fmt.Sprintf(`
local c = assert(net.connect(%q, { frame = "line", proxy = "socks5://127.0.0.1:%s" }))
print(c:recv())`, ln.Addr().String(), pport)
	if r := run(t, src, 10*time.Second, &Env{}); r.err != nil || !strings.HasPrefix(r.out, "via 127.0.0.1:") {
		t.Fatalf("out %q, err %v", r.out, r.err)
	}
	// The run's default (--proxy) is used unless opts.proxy is "none".
	dead, _ := link.ParseProxy("socks5://127.0.0.1:1")
	env := &Env{Dial: DialDefaults{Proxy: func(link.Addr) (*link.Proxy, error) { return dead, nil }}}
	r := run(t, fmt.Sprintf(`print(net.connect(%q))`, ln.Addr().String()), 10*time.Second, env)
	if !strings.Contains(r.out, "proxy socks5://127.0.0.1:1 cannot be reached: connection refused") {
		t.Errorf("default proxy: out %q, err %v", r.out, r.err)
	}
	r = run(t, fmt.Sprintf(`local c = assert(net.connect(%q, { proxy = "none", frame = "line" })) print(c:recv())`, ln.Addr().String()), 10*time.Second, env)
	if r.err != nil || !strings.HasPrefix(r.out, "via 127.0.0.1:") {
		t.Errorf("proxy none: out %q, err %v", r.out, r.err)
	}
}
