package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseWebSocket(t *testing.T) {
	for _, tc := range []struct{ in, want, path string }{
		{"ws://127.0.0.1:8080/mqtt", "ws://127.0.0.1:8080/mqtt", "/mqtt"},
		{"ws://127.0.0.1:8080", "ws://127.0.0.1:8080/", "/"},
		{"WS://h:1/a/b?x=1&y=2", "ws://h:1/a/b?x=1&y=2", "/a/b?x=1&y=2"},
		{"ws://h:1?x=1", "ws://h:1/?x=1", "/?x=1"},
		{"ws://example.com/mqtt", "ws://example.com:80/mqtt", "/mqtt"},
		{"wss://broker.example/mqtt", "wss://broker.example:443/mqtt", "/mqtt"},
		{"wss://[::1]:8443/x", "wss://[::1]:8443/x", "/x"},
		{"ws://:8080/mqtt", "ws://:8080/mqtt", "/mqtt"},
	} {
		a, err := Parse(tc.in, false)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if a.String() != tc.want || a.Path != tc.path || !a.IsWebSocket() || a.Stream() || a.Packet() || a.Network() != "tcp" {
			t.Errorf("Parse(%q) = %+v (%s), want %s", tc.in, a, a, tc.want)
		}
		if b, err := Parse(a.String(), false); err != nil || b != a {
			t.Errorf("Parse(%q) again = %+v, %v", a.String(), b, err)
		}
	}
	for _, tc := range []struct{ in, reason string }{
		{"ws://h:1/x#frag", `unexpected fragment "#frag"`},
		{"ws://h:99999/", "port 99999 out of range"},
		{"ws://::1:80/", "IPv6 address needs brackets"},
		{"ws:///x", "missing host"},
	} {
		_, err := Parse(tc.in, false)
		if err == nil || !errors.Is(err, ErrBadAddr) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("Parse(%q) = %v, want %q", tc.in, err, tc.reason)
		}
	}
	if a, err := JoinHostPort("ws://127.0.0.1", "9000", false); err != nil || a.String() != "ws://127.0.0.1:9000/" {
		t.Errorf("JoinHostPort ws = %v, %v", a, err)
	}
}

func TestParseHeaders(t *testing.T) {
	h, err := parseHeaders([]string{"X-A: 1", "X-A:2", "Authorization: Bearer t:k"})
	if err != nil || strings.Join(h.Values("X-A"), ",") != "1,2" || h.Get("Authorization") != "Bearer t:k" {
		t.Fatalf("got %v, %v", h, err)
	}
	for _, bad := range []string{"nocolon", ": v", "a b: c", "K: v\r\nX: y"} {
		if _, err := parseHeaders([]string{bad}); !errors.Is(err, ErrBadOption) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// wsPair listens on ws://127.0.0.1:0/t with lo and dials it with do.
func wsPair(t *testing.T, lo, do *Options) (server, client net.Conn, ln net.Listener) {
	t.Helper()
	ctx := context.Background()
	a, _ := Parse("ws://127.0.0.1:0/t", false)
	ln, err := Listen(ctx, a, lo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	a.Port = fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	client, err = Dial(ctx, a, do)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server = <-accepted
	if server == nil {
		t.Fatal("nothing accepted")
	}
	t.Cleanup(func() { server.Close() })
	return server, client, ln
}

// Every size around the read buffer and the limit arrives whole and alone;
// a buffer smaller than the message gets it in order, then the next one.
func TestWSMessagesExact(t *testing.T) {
	const max = 1 << 16
	srv, cl, _ := wsPair(t, &Options{WS: WSOptions{MaxMessage: max}}, nil)
	buf := make([]byte, max+1)
	for _, n := range []int{0, 1, 4095, 4096, 4097, max - 1, max} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			msg := bytes.Repeat([]byte{byte(n)}, n)
			if _, err := cl.Write(msg); err != nil {
				t.Fatal(err)
			}
			got, err := srv.Read(buf)
			if err != nil || !bytes.Equal(buf[:got], msg) {
				t.Fatalf("read %d bytes, %v; want %d", got, err, n)
			}
		})
	}
	// A small buffer: the message in pieces, then the next message.
	cl.Write([]byte("abcdefgh"))
	cl.Write([]byte("ij"))
	small := make([]byte, 4)
	var parts []string
	for range 3 {
		n, err := srv.Read(small)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, string(small[:n]))
	}
	if strings.Join(parts, "|") != "abcd|efgh|ij" {
		t.Fatalf("pieces %q", parts)
	}
}

func TestWSOverMaxAndClose(t *testing.T) {
	srv, cl, _ := wsPair(t, &Options{WS: WSOptions{MaxMessage: 100}}, nil)
	cl.Write(make([]byte, 101))
	_, err := srv.Read(make([]byte, 1000))
	if err == nil || !strings.Contains(err.Error(), "over 100 bytes (--max-frame)") {
		t.Fatalf("over the limit: %v", err)
	}
	// The client hears 1009 (message too big) as an error naming it.
	_, err = cl.Read(make([]byte, 10))
	if err == nil || !strings.Contains(err.Error(), "closed the WebSocket with 1009 (message too big)") {
		t.Fatalf("client: %v", err)
	}

	// A normal close reads as io.EOF, and is quick.
	srv2, cl2, _ := wsPair(t, nil, nil)
	start := time.Now()
	go cl2.Close()
	if _, err := srv2.Read(make([]byte, 10)); err != io.EOF {
		t.Fatalf("after close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("close took %v", d)
	}
}

// A read deadline ends the read with a timeout (wirecat's linger), once
// the peer (reading, as every WebSocket peer does) answered the close.
func TestWSReadDeadline(t *testing.T) {
	srv, cl, _ := wsPair(t, nil, nil)
	go cl.Read(make([]byte, 10))
	srv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	_, err := srv.Read(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
}

// A peer that never reads never answers the close a deadline sends: the
// read ends when wsCloseLinger passed, or at once when Close (a signal)
// cuts the wait.
func TestWSReadDeadlineSilentPeer(t *testing.T) {
	srv, _, _ := wsPair(t, nil, nil)
	srv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	time.AfterFunc(600*time.Millisecond, func() { srv.Close() })
	start := time.Now()
	_, err := srv.Read(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 1500*time.Millisecond {
		t.Fatalf("took %v, want the Close at 600ms to end it", d)
	}
}

func TestWSListenerPathsAndSubprotocol(t *testing.T) {
	ctx := context.Background()
	a, _ := Parse("ws://127.0.0.1:0/only", false)
	var logged bytes.Buffer
	ln, err := Listen(ctx, a, &Options{WS: WSOptions{Subprotocol: "mqtt"}, Log: func(f string, args ...any) { fmt.Fprintf(&logged, f+"\n", args...) }})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	base := "http://" + ln.Addr().String()
	for path, want := range map[string]int{"/": 404, "/other": 404, "/only": 426} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	a.Port = fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	_, err = Dial(ctx, a, &Options{WS: WSOptions{Subprotocol: "coap"}})
	if err == nil || !strings.Contains(err.Error(), `upgrade refused: 400 Bad Request: "subprotocol \"mqtt\" required"`) {
		t.Fatalf("wrong subprotocol: %v", err)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := Dial(ctx, a, &Options{WS: WSOptions{Subprotocol: "mqtt"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.(*WSConn).Subprotocol() != "mqtt" {
		t.Fatalf("subprotocol %q", c.(*WSConn).Subprotocol())
	}
	c.Close()
}

// A client asking for a subprotocol the server does not choose is refused.
func TestWSClientNeedsItsSubprotocol(t *testing.T) {
	_, err := func() (net.Conn, error) {
		ctx := context.Background()
		a, _ := Parse("ws://127.0.0.1:0/", false)
		ln, err := Listen(ctx, a, nil) // requires nothing, chooses nothing
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		a.Port = fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
		return Dial(ctx, a, &Options{WS: WSOptions{Subprotocol: "mqtt"}})
	}()
	if err == nil || !strings.Contains(err.Error(), `the server did not agree to subprotocol "mqtt"`) {
		t.Fatalf("got %v", err)
	}
}

// A closed listener ends Accept with net.ErrClosed.
func TestWSListenerClose(t *testing.T) {
	a, _ := Parse("ws://127.0.0.1:0/", false)
	ln, err := Listen(context.Background(), a, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Accept did not return")
	}
}

// ReadMessage returns each message whole and alone, whatever buf's room:
// a message exactly filling it is not joined to the next.
func TestWSReadMessage(t *testing.T) {
	srv, cl, _ := wsPair(t, &Options{WS: WSOptions{MaxMessage: 1 << 20}}, nil)
	sizes := []int{0, 8, 16, 17, 100000, 1 << 20, 3}
	go func() {
		for _, n := range sizes {
			cl.Write(bytes.Repeat([]byte{byte(n)}, n))
		}
	}()
	ws := srv.(*WSConn)
	for _, n := range sizes {
		msg, err := ws.ReadMessage(make([]byte, 0, 16))
		if err != nil || !bytes.Equal(msg, bytes.Repeat([]byte{byte(n)}, n)) {
			t.Fatalf("message of %d: got %d bytes, %v", n, len(msg), err)
		}
	}
}
