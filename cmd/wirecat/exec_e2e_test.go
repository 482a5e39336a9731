package main

// Issue 2: --exec wires a command to each peer, like ncat -e, and loses no
// reply when the peer half-closes right after its request.

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// request sends msg, half-closes and reads the whole answer.
func request(addr, msg string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestExecNoReplyLostOnHalfClose(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wc := start(t, "wirecat", "listen", "-k", addr, "--exec", "tr a-z A-Z")
	waitListen(t, port)
	const clients = 50
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got, err := request(addr, fmt.Sprintf("request %d\n", i), 10*time.Second)
			if want := fmt.Sprintf("REQUEST %d\n", i); err != nil || got != want {
				errs <- fmt.Errorf("client %d: got %q, %v; want %q", i, got, err, want)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	lost := 0
	for err := range errs {
		lost++
		t.Error(err)
	}
	if lost > 0 {
		t.Fatalf("%d of %d replies lost", lost, clients)
	}
	_ = wc
}

func TestExecEnvironment(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wc := start(t, "wirecat", "listen", addr, "--exec",
		`echo "$WIRECAT_PROTO|$WIRECAT_REMOTE_ADDR|$WIRECAT_REMOTE_PORT|$WIRECAT_LOCAL_ADDR|$WIRECAT_LOCAL_PORT|$WIRECAT_CONN_ID"`)
	waitListen(t, port)
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	local := c.LocalAddr().(*net.TCPAddr)
	// Both ends read the same way: host and port apart (issue 15, defect 7).
	want := fmt.Sprintf("tcp|127.0.0.1|%d|127.0.0.1|%d|", local.Port, port)
	got := strings.TrimSpace(string(b))
	if !strings.HasPrefix(got, want) {
		t.Fatalf("the command saw %q, want %q + a connection id", got, want)
	}
	if id, err := strconv.Atoi(strings.TrimPrefix(got, want)); err != nil || id < 1 {
		t.Fatalf("WIRECAT_CONN_ID in %q is not a positive number", got)
	}
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("listen --exec exited %d: %s", code, wc.stderr)
	}
}

func TestExecWarnsOffLoopback(t *testing.T) {
	port := freePort(t)
	// Binding every interface is allowed; traffic still only goes over loopback.
	wc := start(t, "wirecat", "listen", "-k", fmt.Sprintf("0.0.0.0:%d", port), "--exec", "cat")
	waitListen(t, port)
	wc.waitStderr("warning", 10*time.Second)
	if !strings.Contains(wc.stderr.String(), "--exec") {
		t.Fatalf("the warning should name --exec: %q", wc.stderr)
	}
	got, err := request(fmt.Sprintf("127.0.0.1:%d", port), "echo\n", 10*time.Second)
	if err != nil || got != "echo\n" {
		t.Fatalf("got %q, %v", got, err)
	}

	port = freePort(t)
	quiet := start(t, "wirecat", "listen", "-k", fmt.Sprintf("127.0.0.1:%d", port), "--exec", "cat")
	waitListen(t, port)
	if got, err := request(fmt.Sprintf("127.0.0.1:%d", port), "echo\n", 10*time.Second); err != nil || got != "echo\n" {
		t.Fatalf("got %q, %v", got, err)
	}
	if s := quiet.stderr.String(); strings.Contains(s, "warning") {
		t.Fatalf("no warning on loopback, got %q", s)
	}
}

func TestConnectExec(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wc := start(t, "wirecat", "connect", addr, "--exec", "tr a-z A-Z")
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "shout\n")
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "SHOUT\n" {
		t.Fatalf("got %q, %v", b, err)
	}
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("connect --exec exited %d: %s", code, wc.stderr)
	}
}
