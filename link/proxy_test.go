package link

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// proxyEcho serves one connection that echoes a line, and returns its port.
func proxyEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "echo "+line)
	}()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// startPeer runs a proxy and waits until it listens on port.
func startPeer(t *testing.T, port string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, name, args...)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not listen on %s", name, port)
}

func freePort(t *testing.T) string { return fmt.Sprint(e2e.FreePort(t)) }

// viaProxy dials target through proxy and checks the echo.
func viaProxy(t *testing.T, proxy, target string) error {
	t.Helper()
	p, err := ParseProxy(proxy)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Parse(target, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, a, &Options{Proxy: p})
	if err != nil {
		return err
	}
	defer c.Close()
	if got := c.RemoteAddr().String(); got != a.HostPort() {
		t.Errorf("through %s: remote address %s, want the target %s", proxy, got, a.HostPort())
	}
	io.WriteString(c, "hi\n")
	got, _ := bufio.NewReader(c).ReadString('\n')
	if got != "echo hi\n" {
		t.Errorf("through %s: got %q", proxy, got)
	}
	return nil
}

func TestProxyMicrosocks(t *testing.T) {
	bin := needTool(t, "microsocks")
	open, auth := freePort(t), freePort(t)
	startPeer(t, open, bin, "-i", "127.0.0.1", "-p", open)
	startPeer(t, auth, bin, "-i", "127.0.0.1", "-p", auth, "-u", "dev", "-P", "s3cret")

	if err := viaProxy(t, "socks5://127.0.0.1:"+open, "tcp://127.0.0.1:"+proxyEcho(t)); err != nil {
		t.Fatal(err)
	}
	if err := viaProxy(t, "socks5://dev:s3cret@127.0.0.1:"+auth, "127.0.0.1:"+proxyEcho(t)); err != nil {
		t.Fatal(err)
	}
	// A name the proxy resolves.
	if err := viaProxy(t, "socks5h://dev:s3cret@127.0.0.1:"+auth, "localhost:"+proxyEcho(t)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ proxy, want string }{
		{"socks5://127.0.0.1:" + auth, "asks for a user name and password"},
		{"socks5://dev:wrong@127.0.0.1:" + auth, `refused the credentials of user "dev"`},
	} {
		err := viaProxy(t, c.proxy, "127.0.0.1:9")
		if !errors.Is(err, ErrProxyAuth) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "wrong") {
			t.Errorf("%s: got %v, want ErrProxyAuth saying %q without the password", c.proxy, err, c.want)
		}
	}
	dead := freePort(t)
	err := viaProxy(t, "socks5://127.0.0.1:"+open, "127.0.0.1:"+dead)
	if err == nil || !strings.Contains(err.Error(), "refused 127.0.0.1:"+dead+": ") || errors.Is(err, ErrProxyAuth) {
		t.Errorf("dead target: got %v", err)
	}
	err = viaProxy(t, "socks5://127.0.0.1:"+dead, "127.0.0.1:9")
	if err == nil || !strings.Contains(err.Error(), "cannot be reached: connection refused") {
		t.Errorf("dead proxy: got %v", err)
	}
}

func TestProxyNcatHTTP(t *testing.T) {
	bin := needTool(t, "ncat")
	open, auth := freePort(t), freePort(t)
	startPeer(t, open, bin, "-l", "127.0.0.1", open, "--proxy-type", "http", "-k")
	startPeer(t, auth, bin, "-l", "127.0.0.1", auth, "--proxy-type", "http", "--proxy-auth", "dev:s3cret", "-k")

	if err := viaProxy(t, "http://127.0.0.1:"+open, "127.0.0.1:"+proxyEcho(t)); err != nil {
		t.Fatal(err)
	}
	if err := viaProxy(t, "http://dev:s3cret@127.0.0.1:"+auth, "127.0.0.1:"+proxyEcho(t)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ proxy, want string }{
		{"http://127.0.0.1:" + auth, "asks for credentials (407"},
		{"http://dev:wrong@127.0.0.1:" + auth, `refused the credentials of user "dev"`},
	} {
		err := viaProxy(t, c.proxy, "127.0.0.1:9")
		if !errors.Is(err, ErrProxyAuth) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ErrProxyAuth saying %q", c.proxy, err, c.want)
		}
	}
	dead := freePort(t)
	err := viaProxy(t, "http://127.0.0.1:"+open, "127.0.0.1:"+dead)
	if err == nil || !strings.Contains(err.Error(), "refused CONNECT 127.0.0.1:"+dead+": ") {
		t.Errorf("dead target: got %v", err)
	}
}

func TestParseProxy(t *testing.T) {
	for in, want := range map[string]string{
		"socks5://h:1":            "socks5://h:1",
		"socks5h://u:p@h":         "socks5://u@h:1080",
		"http://[::1]":            "http://[::1]:8080",
		"HTTP://proxy.lan:3128/":  "http://proxy.lan:3128",
		"http://user@10.0.0.1:80": "http://user@10.0.0.1:80",
	} {
		p, err := ParseProxy(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseProxy(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for in, want := range map[string]string{
		"h:1080":            "want socks5://",
		"ftp://h:1":         "unknown scheme ftp",
		"https://h:1":       "not supported",
		"socks5://:1":       "no host",
		"socks5://h:99999":  "not 1-65535",
		"http://u:pw@h:0":   `"http://u:xxxxx@h:0"`,
		"socks5://h:1/path": "no path",
	} {
		_, err := ParseProxy(in)
		if err == nil || !errors.Is(err, ErrBadOption) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseProxy(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

func TestProxyFor(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	check := func(addr, want string) {
		t.Helper()
		a, err := Parse(addr, false)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ProxyFor(a, getenv)
		got := "direct"
		if err != nil {
			got = "error"
		} else if p != nil {
			got = p.String() + " from " + p.From
		}
		if got != want {
			t.Errorf("%v with %v: %s, want %s", addr, env, got, want)
		}
	}
	check("tcp://dev.lan:80", "direct")
	env["all_proxy"] = "socks5://p:1"
	check("tcp://dev.lan:80", "socks5://p:1 from all_proxy")
	check("udp://dev.lan:80", "direct")
	check("tcp://127.0.0.1:80", "direct")
	check("tcp://[::1]:80", "direct")
	check("tcp://localhost:80", "direct")
	env["HTTPS_PROXY"] = "http://q:2"
	check("tls://dev.lan:443", "http://q:2 from HTTPS_PROXY")
	check("tcp://dev.lan:443", "socks5://p:1 from all_proxy")
	env["NO_PROXY"] = "example.com, .lan,10.0.0.0/8"
	check("tcp://dev.lan:80", "direct")
	check("tcp://a.example.com:80", "direct")
	check("tcp://example.org:80", "socks5://p:1 from all_proxy")
	check("tcp://10.1.2.3:80", "direct")
	check("tcp://11.1.2.3:80", "socks5://p:1 from all_proxy")
	env["NO_PROXY"] = "*"
	check("tcp://example.org:80", "direct")
	env["NO_PROXY"] = ""
	env["all_proxy"] = "bogus"
	check("tcp://example.org:80", "error")
}

func TestRetryBackoff(t *testing.T) {
	o := &Options{Backoff: 100 * time.Millisecond, BackoffMax: time.Second}
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		for i := 0; i < 50; i++ {
			if d := o.NextBackoff(n + 1); d < want/2 || d > want {
				t.Fatalf("attempt %d: %v, want within [%v, %v]", n+1, d, want/2, want)
			}
		}
	}
}

func TestDialRetry(t *testing.T) {
	port := freePort(t) // nothing listens yet
	a, _ := Parse("tcp://127.0.0.1:"+port, false)
	var lines []string
	o := &Options{Retry: 2, Backoff: 10 * time.Millisecond, Debug: func(f string, args ...any) { lines = append(lines, fmt.Sprintf(f, args...)) }}
	_, err := Dial(context.Background(), a, o)
	var re *RetryError
	if !errors.As(err, &re) || re.Attempts != 3 || !strings.Contains(err.Error(), "connection refused (gave up after 3 attempts)") {
		t.Fatalf("got %v", err)
	}
	if len(lines) != 2 || !strings.Contains(lines[0], "attempt 1 of 3 failed: connection refused; trying again in") {
		t.Fatalf("trace: %q", lines)
	}

	// A server that comes up during the retries is reached.
	lines = nil
	o.Retry = RetryForever
	go func() {
		time.Sleep(150 * time.Millisecond)
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err == nil {
			t.Cleanup(func() { ln.Close() })
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, a, o)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if last := lines[len(lines)-1]; !strings.Contains(last, "succeeded") || len(lines) < 3 {
		t.Errorf("trace: %q", lines)
	}

	// What no retry mends ends at once.
	p, _ := ParseProxy("socks5://127.0.0.1:1")
	if Retryable(&OpError{Err: &ProxyError{Auth: true}}) || !Retryable(&OpError{Err: p.fail(false, "x")}) {
		t.Error("Retryable: auth failures end, other proxy failures retry")
	}

	// A canceled context ends the waits.
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	dead, _ := Parse("tcp://127.0.0.1:"+freePort(t), false)
	start := time.Now()
	if _, err := Dial(ctx2, dead, &Options{Retry: RetryForever, Backoff: time.Second}); err == nil || time.Since(start) > time.Second {
		t.Errorf("canceled after %v: %v", time.Since(start), err)
	}
}
