package main

// Issue 14, "connections that heal": --retry, connect --reconnect and
// --proxy (SOCKS5 through microsocks, HTTP CONNECT through ncat), with the
// built binary.

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/testpeer"
)

// hashServer answers each connection with the SHA-256 of the first n bytes
// it reads, then "DONE", for up to conns connections; it returns its address.
func hashServer(t *testing.T, n, conns int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for i := 0; i < conns; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				h := sha256.New()
				io.CopyN(h, c, int64(n))
				fmt.Fprintf(c, "%x DONE\n", h.Sum(nil))
			}()
		}
	}()
	return ln.Addr().String()
}

// startProxy runs a proxy peer on a free port and returns the port.
func startProxy(t *testing.T, name string, args func(port string) []string) string {
	t.Helper()
	port := strconv.Itoa(freePort(t))
	start(t, name, args(port)...)
	waitListen(t, freePort0(port))
	return port
}

func freePort0(s string) int { n, _ := strconv.Atoi(s); return n }

// TestProxyExactBytes: 256 KiB of random bytes reach the target unchanged
// through microsocks (with credentials) and ncat's HTTP proxy.
func TestProxyExactBytes(t *testing.T) {
	need(t, "microsocks", "ncat")
	payload := make([]byte, 256<<10)
	for i := range payload {
		payload[i] = byte(rand.N(256))
	}
	file := filepath.Join(t.TempDir(), "payload.bin")
	os.WriteFile(file, payload, 0o600)
	want := fmt.Sprintf("%x DONE\n", sha256.Sum256(payload))

	socks := startProxy(t, "microsocks", func(p string) []string { return []string{"-i", "127.0.0.1", "-p", p, "-u", "dev", "-P", "s3cret"} })
	http := startProxy(t, "ncat", func(p string) []string { return []string{"-l", "127.0.0.1", p, "--proxy-type", "http", "-k"} })
	for _, proxy := range []string{"socks5://dev:s3cret@127.0.0.1:" + socks, "http://127.0.0.1:" + http} {
		target := hashServer(t, len(payload), 1)
		out, errOut, code := runWirecat(t, "", 20*time.Second, "send", "-v", "--proxy", proxy, target, "-f", file, "--until", "DONE")
		if code != 0 || out != want {
			t.Errorf("%s: exit %d, stdout %q, want %q\n%s", proxy, code, out, want, errOut)
		}
		if !strings.Contains(errOut, "through proxy "+strings.Replace(proxy, ":s3cret", "", 1)+" (--proxy)") {
			t.Errorf("%s: -v does not name the proxy:\n%s", proxy, errOut)
		}
	}
}

// TestProxyBadInput: a proxy that asks for credentials, refuses them, or
// refuses the target: one clear line each, and a relay keeps serving.
func TestProxyBadInput(t *testing.T) {
	need(t, "microsocks", "ncat")
	socks := startProxy(t, "microsocks", func(p string) []string { return []string{"-i", "127.0.0.1", "-p", p, "-u", "dev", "-P", "s3cret"} })
	http := startProxy(t, "ncat", func(p string) []string {
		return []string{"-l", "127.0.0.1", p, "--proxy-type", "http", "--proxy-auth", "dev:s3cret", "-k"}
	})
	dead := freePort(t)
	for _, c := range []struct{ proxy, want string }{
		{"socks5://127.0.0.1:" + socks, "proxy socks5://127.0.0.1:" + socks + " asks for a user name and password: give them as socks5://user:pass@host:port"},
		{"socks5://dev:nope@127.0.0.1:" + socks, `proxy socks5://dev@127.0.0.1:` + socks + ` refused the credentials of user "dev"`},
		{"socks5://dev:s3cret@127.0.0.1:" + socks, fmt.Sprintf("proxy socks5://dev@127.0.0.1:%s refused 127.0.0.1:%d: ", socks, dead)},
		{"http://127.0.0.1:" + http, "proxy http://127.0.0.1:" + http + " asks for credentials (407 Proxy Authentication Required)"},
		{"http://dev:s3cret@127.0.0.1:" + http, fmt.Sprintf("refused CONNECT 127.0.0.1:%d: ", dead)},
		{"http://127.0.0.1:" + strconv.Itoa(dead), "cannot be reached: connection refused"},
		{"ftp://127.0.0.1:1", "unknown scheme ftp"},
	} {
		// --retry does not retry what credentials decide.
		_, errOut, code := runWirecat(t, "", 10*time.Second, "connect", "--retry", "3", "--proxy", c.proxy, "127.0.0.1", strconv.Itoa(dead))
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code == 0 || len(lines) != 1 || !strings.Contains(lines[0], c.want) || strings.Contains(errOut, "nope") {
			t.Errorf("%s: exit %d, stderr %q, want one line with %q", c.proxy, code, errOut, c.want)
		}
	}

	// A relay whose proxy wants credentials says so per client and serves on.
	lport := freePort(t)
	relay := start(t, "wirecat", "relay", fmt.Sprintf("127.0.0.1:%d", lport), fmt.Sprintf("127.0.0.1:%d", dead), "--proxy", "socks5://127.0.0.1:"+socks)
	waitListen(t, lport)
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", lport))
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Errorf("client %d: read %d, %v; want the relay to close it", i, n, err)
		}
		c.Close()
	}
	waitFor(t, 5*time.Second, "a line per client", func() bool {
		return strings.Count(relay.stderr.String(), "asks for a user name and password") == 2
	})
	select {
	case <-relay.done:
		t.Fatalf("the relay ended: %s", relay.stderr)
	default:
	}
}

// connectProxy is a tiny HTTP CONNECT proxy that sends every tunnel to
// backend, whatever name was asked: it shows that wirecat went through it
// (the names asked for do not resolve). It records the names asked.
func connectProxy(t *testing.T, backend string) (string, *syncBuffer) {
	t.Helper()
	asked := &syncBuffer{}
	addr := testpeer.TCP(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(c)
		line, _ := r.ReadString('\n')
		for {
			h, err := r.ReadString('\n')
			if err != nil || h == "\r\n" {
				break
			}
		}
		fmt.Fprintf(asked, "%s\n", strings.TrimSpace(line))
		b, err := net.Dial("tcp", backend)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
			return
		}
		defer b.Close()
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		go io.Copy(b, r)
		io.Copy(c, b)
	})
	return addr, asked
}

// TestProxyFromEnvironment: ALL_PROXY and HTTPS_PROXY are used, NO_PROXY
// and --proxy none are not.
func TestProxyFromEnvironment(t *testing.T) {
	target := hashServer(t, 5, 10)
	proxy, asked := connectProxy(t, target)
	run := func(env []string, args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader("")
		var out, errOut syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		done := make(chan struct{})
		go func() { cmd.Run(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("wirecat %v did not exit", args)
		}
		return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
	}
	want := fmt.Sprintf("%x DONE\n", sha256.Sum256([]byte("hello")))
	out, errOut, code := run([]string{"ALL_PROXY=http://" + proxy}, "send", "-v", "board.invalid:502", "hello", "--until", "DONE")
	if code != 0 || out != want || !strings.Contains(errOut, "(ALL_PROXY)") || !strings.Contains(asked.String(), "CONNECT board.invalid:502 HTTP/1.1") {
		t.Errorf("ALL_PROXY: exit %d, out %q, asked %q\n%s", code, out, asked, errOut)
	}
	out, errOut, code = run([]string{"https_proxy=http://" + proxy}, "send", "-v", "--insecure", "tls://gw.invalid:8883", "hello")
	if !strings.Contains(errOut, "(https_proxy)") || !strings.Contains(asked.String(), "CONNECT gw.invalid:8883") {
		t.Errorf("https_proxy: exit %d, out %q, asked %q\n%s", code, out, asked, errOut)
	}
	for _, c := range []struct {
		env  []string
		args []string
	}{
		{[]string{"ALL_PROXY=http://" + proxy, "NO_PROXY=.invalid"}, nil},
		{[]string{"ALL_PROXY=http://" + proxy}, []string{"--proxy", "none"}},
	} {
		_, errOut, code := run(c.env, append([]string{"send", "board.invalid:502", "hello"}, c.args...)...)
		if code == 0 || !strings.Contains(errOut, `cannot resolve "board.invalid"`) {
			t.Errorf("%v %v: exit %d, want a direct dial that cannot resolve\n%s", c.env, c.args, code, errOut)
		}
	}
	_, errOut, code = run([]string{"ALL_PROXY=gopher://x"}, "send", "board.invalid:502", "hello")
	if code != 2 || !strings.Contains(errOut, "ALL_PROXY: proxy \"gopher://x\": unknown scheme gopher") {
		t.Errorf("bad ALL_PROXY: exit %d\n%s", code, errOut)
	}
}

// TestRetryWaitsForTheServer: connect --retry forever and the relay's
// target with --retry reach a server that comes up late; --retry N gives up.
func TestRetryWaitsForTheServer(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := startIn(t, strings.NewReader("hello"), "wirecat", "connect", "-v", "--retry", "forever", addr)
	c.waitStderr("attempt 2 failed: connection refused; trying again in", 10*time.Second)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.SetDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(s)
	s.Write([]byte("bye"))
	s.Close()
	if string(got) != "hello" || c.wait(10*time.Second) != 0 || c.stdout.String() != "bye" {
		t.Errorf("got %q; stdout %q\n%s", got, c.stdout, c.stderr)
	}

	began := time.Now()
	_, errOut, code := runWirecat(t, "", 10*time.Second, "connect", "--retry", "2", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	if code != 1 || !strings.HasSuffix(strings.TrimSpace(errOut), "connection refused (gave up after 3 attempts)") || time.Since(began) > 3*time.Second {
		t.Errorf("--retry 2: exit %d after %v\n%s", code, time.Since(began), errOut)
	}
	_, errOut, code = runWirecat(t, "", 10*time.Second, "connect", "--retry", "often", addr)
	if code != 2 || !strings.Contains(errOut, `--retry "often": want a count of retries (0, 5...) or forever`) {
		t.Errorf("--retry often: exit %d\n%s", code, errOut)
	}

	// A signal ends a connect that retries forever within a second.
	w := start(t, "wirecat", "connect", "--retry", "forever", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	time.Sleep(300 * time.Millisecond)
	w.cmd.Process.Signal(syscall.SIGTERM)
	t0 := time.Now()
	code = w.wait(5 * time.Second)
	if d := time.Since(t0); d > time.Second || code != 143 || w.stderr.String() != "" {
		t.Errorf("SIGTERM took %v, exit %d (want 143 and nothing said): %s", d, code, w.stderr)
	}

	// The relay's target.
	tport, lport := freePort(t), freePort(t)
	start(t, "wirecat", "relay", "-v", fmt.Sprintf("127.0.0.1:%d", lport), fmt.Sprintf("127.0.0.1:%d", tport), "--retry", "forever")
	waitListen(t, lport)
	cl, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", lport))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cl.Write([]byte("ping"))
	time.Sleep(300 * time.Millisecond) // a few failed attempts
	tl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", tport))
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	ts, err := tl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ts.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(ts, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("target got %q, %v", buf, err)
	}
	ts.Close()
}

// TestReconnectCarriesOn: a server that hangs up after two lines, then
// resets, then reads to the end: connect --reconnect delivers the lines in
// order, none twice, and exits 0 when stdin is done.
func TestReconnectCarriesOn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	read := make(chan struct{}, 10) // a line was read
	go func() {
		var lines []string
		for i := 0; i < 3; i++ {
			c, err := ln.Accept()
			if err != nil {
				break
			}
			c.SetDeadline(time.Now().Add(20 * time.Second))
			r := bufio.NewReader(c)
			for j := 0; i == 2 || j < 2; j++ {
				l, err := r.ReadString('\n')
				if err != nil {
					break
				}
				lines = append(lines, strings.TrimSpace(l))
				read <- struct{}{}
			}
			if i == 1 {
				c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
		}
		got <- lines
	}()
	p := start(t, "wirecat", "connect", "-v", "--reconnect", ln.Addr().String())
	// Each line is written once the server read the last one and had time
	// to hang up: a line the kernel takes after the peer left is lost (TCP
	// gives no receipt), which is not what this test is about.
	for i := 0; i < 10; i++ {
		fmt.Fprintf(p.stdin, "line %d\n", i)
		select {
		case <-read:
		case <-time.After(10 * time.Second):
			t.Fatalf("line %d never read\n%s", i, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stdin.Close()
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.stderr)
	}
	lines := <-got
	want := []string{}
	for i := 0; i < 10; i++ {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	// Nothing was in flight when the server hung up (it read every line
	// sent so far), so nothing may be missing.
	if strings.Join(lines, ",") != strings.Join(want, ",") {
		t.Errorf("server got %q", lines)
	}
	if n := strings.Count(p.stderr.String(), "connecting again in"); n != 2 {
		t.Errorf("%d reconnections reported, want 2:\n%s", n, p.stderr)
	}
	_, errOut, code := runWirecat(t, "", 5*time.Second, "connect", "--reconnect", "-u", "127.0.0.1:9")
	if code != 2 || !strings.Contains(errOut, "--reconnect needs a stream") {
		t.Errorf("udp: exit %d\n%s", code, errOut)
	}
}

// TestReplayThroughProxy: replay --as client --to goes through --proxy
// (microsocks) and checks the answers as usual.
func TestReplayThroughProxy(t *testing.T) {
	need(t, "microsocks")
	port := startLED(t, false)
	file := recordLED(t, port, "connect")
	socks := startProxy(t, "microsocks", func(p string) []string { return []string{"-i", "127.0.0.1", "-p", p} })
	out, errOut, code := runWirecat(t, "", 20*time.Second, "replay", file, "--check", "-v", "--to", fmt.Sprintf("127.0.0.1:%d", port),
		"--proxy", "socks5://127.0.0.1:"+socks, "--retry", "2")
	if code != 0 || out != "LED is ON\nLED is OFF\n" || !strings.Contains(errOut, "through proxy socks5://127.0.0.1:"+socks) {
		t.Fatalf("exit %d, stdout %q\n%s", code, out, errOut)
	}
	_, errOut, code = runWirecat(t, "", 20*time.Second, "replay", file, "--as", "server", "--proxy", "socks5://127.0.0.1:1")
	if code != 2 || !strings.Contains(errOut, "--retry and --proxy are for --as client") {
		t.Errorf("--as server --proxy: exit %d\n%s", code, errOut)
	}
	_, errOut, code = runWirecat(t, "", 10*time.Second, "connect", "-z", "--proxy", "socks5://127.0.0.1:1", "127.0.0.1", "1-3")
	if code != 2 || !strings.Contains(errOut, "-z tries each port once, directly") {
		t.Errorf("-z --proxy: exit %d\n%s", code, errOut)
	}
}

// TestProxyWebSocket: a ws:// connection goes through --proxy too (its TCP
// connection underneath does).
func TestProxyWebSocket(t *testing.T) {
	need(t, "microsocks")
	socks := startProxy(t, "microsocks", func(p string) []string { return []string{"-i", "127.0.0.1", "-p", p} })
	port := freePort(t)
	start(t, "wirecat", "listen", "-k", fmt.Sprintf("ws://127.0.0.1:%d/echo", port), "--exec", "cat")
	waitListen(t, port)
	p := start(t, "wirecat", "connect", "-v", "--proxy", "socks5://127.0.0.1:"+socks, fmt.Sprintf("ws://127.0.0.1:%d/echo", port))
	io.WriteString(p.stdin, "hello ws\n")
	p.waitOutput("hello ws\n", 10*time.Second)
	p.stdin.Close()
	p.wait(10 * time.Second)
	if !strings.Contains(p.stderr.String(), fmt.Sprintf("connect tcp://127.0.0.1:%d through proxy socks5://127.0.0.1:%s", port, socks)) {
		t.Errorf("-v does not show the proxy:\n%s", p.stderr)
	}
}
