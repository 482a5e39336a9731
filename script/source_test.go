package script

import (
	"net"
	"strings"
	"testing"
	"time"
)

// net.connect's source option is -s/--source for a device.
func TestConnectFromSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	from := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			from <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}
	}()
	r := run(t, `local c = net.connect("`+ln.Addr().String()+`", {source = "127.0.0.9"}); print(c and "connected")`, 3*time.Second, nil)
	if r.err != nil || r.out != "connected\n" {
		t.Fatalf("out %q err %v", r.out, r.err)
	}
	if got := <-from; got != "127.0.0.9" {
		t.Fatalf("connected from %s", got)
	}
	r = run(t, `net.connect("`+ln.Addr().String()+`", {source = "1.2.3.4:99999"})`, 3*time.Second, nil)
	if r.err == nil || !strings.Contains(r.err.Error(), "source: bad address") {
		t.Fatalf("a bad source: %v", r.err)
	}
}
