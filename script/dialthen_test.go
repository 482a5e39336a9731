package script

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/link"
)

// A connect whose proxy is refused before any dial (the run's --proxy
// fails to resolve) answers the script even when another event already waits in
// the device's queue: that answer used to be posted from the device's own
// goroutine, which then waited for itself, deaf to the stop as well.
func TestDialThenProxyErrorWithEventWaiting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		time.Sleep(200 * time.Millisecond) // while the device is busy below
		c.Write([]byte("x"))
		time.Sleep(2 * time.Second)
	}()
	src := fmt.Sprintf(`
local c = assert(net.connect(%q))
spawn(function() print("recv", c:recv()) end)
sleep(0) -- the recv starts its read
local t0 = now()
while now() - t0 < 0.5 do end -- the read's result is queued meanwhile
print(modbus.connect("tcp://127.0.0.1:1"))
`, ln.Addr().String())
	done := make(chan result, 1)
	env := &Env{Dial: DialDefaults{Proxy: func(a link.Addr) (*link.Proxy, error) {
		if a.Port == "1" { // modbus.connect's, not net.connect's
			return nil, errors.New("no proxy today")
		}
		return nil, nil
	}}}
	go func() { done <- run(t, src, 5*time.Second, env) }()
	select {
	case r := <-done:
		if r.err != nil || !strings.Contains(r.out, "nil\tno proxy today") || !strings.Contains(r.out, "recv\tx") {
			t.Fatalf("out %q, err %v", r.out, r.err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("the device hung: modbus.connect's proxy error never reached it, nor did the stop")
	}
}

// mqtt.connect dials through opts.proxy (docs/lua.md), and "none" goes
// direct whatever the run's --proxy.
func TestMQTTConnectOptsProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Read(make([]byte, 256))      // CONNECT
				c.Write([]byte{0x20, 2, 0, 0}) // CONNACK, accepted
				c.Read(make([]byte, 256))      // DISCONNECT, or the end
			}()
		}
	}()
	addr := ln.Addr().String()
	r := run(t, fmt.Sprintf(`print(mqtt.connect(%q, { proxy = "socks5://127.0.0.1:1" }))`, addr), 10*time.Second, nil)
	if !strings.Contains(r.out, "nil\tproxy socks5://127.0.0.1:1 cannot be reached") {
		t.Errorf("opts.proxy: out %q, err %v", r.out, r.err)
	}
	dead, _ := link.ParseProxy("socks5://127.0.0.1:1")
	env := &Env{Dial: DialDefaults{Proxy: func(link.Addr) (*link.Proxy, error) { return dead, nil }}}
	r = run(t, fmt.Sprintf(`local m = assert(mqtt.connect(%q, { proxy = "none" })) print("connected") m:disconnect()`, addr), 10*time.Second, env)
	if r.err != nil || r.out != "connected\n" {
		t.Errorf("proxy none: out %q, err %v", r.out, r.err)
	}
}
