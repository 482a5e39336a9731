package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The netcat habits: `listen 5000`, `connect HOST PORT`, -s and -w.

func TestParseListenBarePort(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		udp      bool
	}{
		{"5000", "tcp://:5000", false},
		{"5005", "udp://:5005", true},
		{"0", "tcp://:0", false},
		{":5000", "tcp://:5000", false},
		{"127.0.0.1:5000", "tcp://127.0.0.1:5000", false},
	} {
		a, err := ParseListen(tc.in, tc.udp)
		if err != nil || a.String() != tc.want {
			t.Errorf("ParseListen(%q) = %v, %v; want %s", tc.in, a, err, tc.want)
		}
	}
	_, err := ParseListen("70000", false)
	if err == nil || err.Error() != `bad address "70000": port 70000 out of range 0-65535` {
		t.Errorf("ParseListen(70000): %v", err)
	}
	// connect has no default host: a bare port is an error that says so
	_, err = Parse("5000", false)
	if err == nil || !strings.Contains(err.Error(), "missing host (want host:port, e.g. 127.0.0.1:5000, or HOST PORT)") {
		t.Errorf("Parse(5000): %v", err)
	}
}

func TestJoinHostPort(t *testing.T) {
	for _, tc := range []struct {
		host, port, want string
		udp              bool
	}{
		{"127.0.0.1", "5000", "tcp://127.0.0.1:5000", false},
		{"127.0.0.1", "5005", "udp://127.0.0.1:5005", true},
		{"::1", "5000", "tcp://[::1]:5000", false},
		{"[::1]", "5000", "tcp://[::1]:5000", false},
		{"localhost", "http", "tcp://localhost:80", false},
		{"tls://example.com", "443", "tls://example.com:443", false},
		{"udp://127.0.0.1", "53", "udp://127.0.0.1:53", false},
	} {
		a, err := JoinHostPort(tc.host, tc.port, tc.udp)
		if err != nil || a.String() != tc.want {
			t.Errorf("JoinHostPort(%q, %q) = %v, %v; want %s", tc.host, tc.port, a, err, tc.want)
		}
	}
	for _, tc := range []struct{ host, port, err string }{
		{"127.0.0.1:80", "5000", `bad address "127.0.0.1:80 5000": host "127.0.0.1:80" already has a port`},
		{"127.0.0.1", "99999", `bad address "127.0.0.1 99999": port 99999 out of range 0-65535`},
		{"unix:///tmp/x", "1", `a unix socket has a path, not a port`},
		{"a/b", "1", `unexpected host "a/b"`},
	} {
		_, err := JoinHostPort(tc.host, tc.port, false)
		if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrBadAddr) {
			t.Errorf("JoinHostPort(%q, %q) = %v, want %q", tc.host, tc.port, err, tc.err)
		}
	}
}

func TestParseSource(t *testing.T) {
	for _, tc := range []struct{ in, host, port string }{
		{"127.0.0.2", "127.0.0.2", "0"},
		{"127.0.0.2:4000", "127.0.0.2", "4000"},
		{"::1", "::1", "0"},
		{"[::1]:4000", "::1", "4000"},
		{"localhost", "localhost", "0"},
	} {
		h, p, err := ParseSource(tc.in)
		if err != nil || h != tc.host || p != tc.port {
			t.Errorf("ParseSource(%q) = %q %q %v", tc.in, h, p, err)
		}
	}
	for _, in := range []string{"", "1.2.3.4:99999", "a b", "1.2.3.4:x:y"} {
		if _, _, err := ParseSource(in); err == nil {
			t.Errorf("ParseSource(%q) accepted", in)
		}
	}
}

func TestDialFromSource(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, _ := Parse(l.Addr().String(), false)
	c, err := Dial(context.Background(), a, &Options{Source: "127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.2" {
		t.Fatalf("connected from %s, want 127.0.0.2", got)
	}
	peer, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	peer.Close()
	// An address this machine does not have is named in the error.
	_, err = Dial(context.Background(), a, &Options{Source: "192.0.2.1"})
	if err == nil || !strings.Contains(err.Error(), "--source 192.0.2.1 is not an address of this machine") {
		t.Fatalf("foreign source: %v", err)
	}
}

func TestDialTimeout(t *testing.T) {
	// A listener with a backlog of 0 that never accepts completes one
	// handshake; the next SYNs are dropped, so a connect waits until -w
	// cuts it short.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	a, _ := Parse(fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port), false)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 10; i++ {
		start := time.Now()
		c, err := Dial(context.Background(), a, &Options{Timeout: 200 * time.Millisecond})
		if err != nil {
			if !strings.Contains(err.Error(), "no answer within --timeout 200ms") {
				t.Fatalf("after %d connections: %v", i, err)
			}
			if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
				t.Fatalf("gave up after %v, want about 200ms", d)
			}
			return
		}
		held = append(held, c)
	}
	t.Fatal("every connect succeeded: the backlog never filled")
}
