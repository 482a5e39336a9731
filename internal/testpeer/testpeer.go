// Package testpeer runs the loopback peers that tests relay and replay
// against: a listener that hands each connection to a handler and stops
// when the test ends.
package testpeer

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Deadline bounds every served connection, so a test that goes wrong
// fails instead of hanging.
const Deadline = time.Minute

// Serve accepts on ln until the test ends, running handle on each
// connection in its own goroutine and closing the connection after.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(Deadline))
				handle(c)
			}()
		}
	}()
}

// TCP serves handle on a free loopback TCP port and returns its host:port.
func TCP(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	Serve(t, ln, handle)
	return ln.Addr().String()
}

// Echo sends back everything it reads.
func Echo(c net.Conn) { io.Copy(c, c) }

// Lines answers each line it reads with reply(line) and a newline; an
// empty reply sends nothing.
func Lines(reply func(line string) string) func(net.Conn) {
	return func(c net.Conn) {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			if r := reply(sc.Text()); r != "" {
				io.WriteString(c, r+"\n")
			}
		}
	}
}

// WSUpgrade reads a WebSocket upgrade request from c and answers it with
// 101 Switching Protocols; what comes after is the caller's.
func WSUpgrade(c net.Conn) error {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return err
	}
	h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	_, err = fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(h[:]))
	return err
}
