package main

// Issue 2: the data semantics of SPEC, end to end: recv-only and send-only,
// --idle, --max-frame, --max-conns, --allow, IPv6, input and output modes,
// listen -k fan-out, resets, Ctrl-C and a port in use.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// peer is a Go TCP listener on loopback that accepts one connection.
type peer struct {
	t    *testing.T
	ln   net.Listener
	addr string
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &peer{t: t, ln: ln, addr: ln.Addr().String()}
}

// accept waits (bounded) for wirecat to connect.
func (p *peer) accept() net.Conn {
	p.t.Helper()
	p.ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	c, err := p.ln.Accept()
	if err != nil {
		p.t.Fatalf("accept: %v", err)
	}
	p.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// dial connects to a wirecat listener, bounded in time.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// expectSilence checks that nothing, not even EOF, arrives on c for d.
func expectSilence(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	var buf [64]byte
	n, err := c.Read(buf[:])
	if n > 0 || !isTimeout(err) {
		t.Fatalf("want silence for %v, got %q, %v", d, buf[:n], err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
}

// expectClosed checks that wirecat closes c (EOF or reset) within 5s.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("want the connection closed, got %q, %v", b, err)
	}
	if len(b) > 0 {
		t.Fatalf("a refused peer got %q", b)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func devNull(t *testing.T) *os.File {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestStdinDevNullCountsAsRecvOnly(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wc := startIn(t, devNull(t), "wirecat", "listen", addr)
	waitListen(t, port)
	c := dial(t, addr)
	// A background job's listener must not hang up on the device: no FIN.
	expectSilence(t, c, 400*time.Millisecond)
	io.WriteString(c, "late reading\n")
	wc.waitOutput("late reading\n", 10*time.Second)
	expectSilence(t, c, 100*time.Millisecond)
	c.Close()
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, wc.stderr)
	}
}

func TestRecvOnlyAndSendOnly(t *testing.T) {
	t.Run("recv-only", func(t *testing.T) {
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		// stdin has data and ends: neither may reach the peer.
		wc := startIn(t, strings.NewReader("must not be sent\n"), "wirecat", "listen", addr, "--recv-only")
		waitListen(t, port)
		c := dial(t, addr)
		expectSilence(t, c, 400*time.Millisecond)
		io.WriteString(c, "still heard\n")
		wc.waitOutput("still heard\n", 10*time.Second)
		c.Close()
		if code := wc.wait(10 * time.Second); code != 0 {
			t.Fatalf("exit %d: %s", code, wc.stderr)
		}
	})
	t.Run("send-only", func(t *testing.T) {
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		wc := startIn(t, strings.NewReader("to the peer\n"), "wirecat", "listen", addr, "--send-only")
		waitListen(t, port)
		c := dial(t, addr)
		io.WriteString(c, "ignored\n")
		b, err := io.ReadAll(c) // stdin ended: a half-close follows the data
		if err != nil || string(b) != "to the peer\n" {
			t.Fatalf("peer got %q, %v", b, err)
		}
		c.Close()
		if code := wc.wait(10 * time.Second); code != 0 {
			t.Fatalf("exit %d: %s", code, wc.stderr)
		}
		if wc.stdout.String() != "" {
			t.Fatalf("--send-only printed %q", wc.stdout)
		}
	})
}

func TestIdleEndsASilentConnection(t *testing.T) {
	p := newPeer(t)
	begin := time.Now()
	wc := start(t, "wirecat", "connect", p.addr, "--idle", "300ms") // stdin stays open
	c := p.accept()
	io.WriteString(c, "hello\n")
	wc.waitOutput("hello\n", 10*time.Second)
	code := wc.wait(10 * time.Second)
	took := time.Since(begin)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, wc.stderr)
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Fatalf("--idle 300ms ended the connection after %v", took)
	}
	// wirecat closed its side.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("after --idle the peer read %q, %v", b, err)
	}

	t.Run("listen", func(t *testing.T) {
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		wc := start(t, "wirecat", "listen", addr, "--idle", "300ms")
		waitListen(t, port)
		c := dial(t, addr)
		begin := time.Now()
		if code := wc.wait(10 * time.Second); code != 0 {
			t.Fatalf("exit %d: %s", code, wc.stderr)
		}
		if took := time.Since(begin); took > 5*time.Second {
			t.Fatalf("took %v", took)
		}
		c.Close()
	})
}

func TestMaxFrame(t *testing.T) {
	p := newPeer(t)
	wc := start(t, "wirecat", "connect", p.addr, "--frame", "line", "--max-frame", "16")
	c := p.accept()
	io.WriteString(c, "short\n"+strings.Repeat("x", 100)+"\n")
	code := wc.wait(10 * time.Second)
	stderr := wc.stderr.String()
	if code != 1 || !strings.Contains(stderr, "--max-frame") {
		t.Fatalf("exit %d, stderr %q: want 1 and an error naming --max-frame", code, stderr)
	}
	if n := strings.Count(stderr, "\n"); n != 1 {
		t.Fatalf("want one line on stderr, got %q", stderr)
	}
	if wc.stdout.String() != "short\n" {
		t.Fatalf("what came before the long frame should be printed: %q", wc.stdout)
	}

	t.Run("no huge memory", func(t *testing.T) {
		// 256 MiB with no newline under the default 1 MiB limit: an error,
		// found long before the whole stream is buffered.
		p := newPeer(t)
		wc := start(t, "wirecat", "connect", p.addr, "--frame", "line")
		c := p.accept()
		go func() {
			chunk := bytes.Repeat([]byte("y"), 1<<20)
			for i := 0; i < 256; i++ {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}()
		code := wc.wait(20 * time.Second)
		if code != 1 || !strings.Contains(wc.stderr.String(), "--max-frame") {
			t.Fatalf("exit %d, stderr %q", code, wc.stderr)
		}
		limit := int64(64 << 10) // KiB; about 14 MiB is normal
		if raceEnabled {
			limit *= 8 // the race detector's shadow memory
		}
		if ru, ok := wc.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > limit {
			t.Fatalf("peak memory %d MiB for a 1 MiB limit", ru.Maxrss>>10)
		}
	})
}

func TestMaxConns(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wc := start(t, "wirecat", "listen", "-k", addr, "--max-conns", "2", "--frame", "line")
	waitListen(t, port)
	a, b := dial(t, addr), dial(t, addr)
	io.WriteString(a, "a\n")
	io.WriteString(b, "b\n")
	wc.waitOutput("a\n", 10*time.Second)
	wc.waitOutput("b\n", 10*time.Second)
	third := dial(t, addr)
	io.WriteString(third, "third\n")
	expectClosed(t, third)
	wc.waitStderr("--max-conns", 10*time.Second)
	if strings.Contains(wc.stdout.String(), "third") {
		t.Fatalf("the third peer was heard: %q", wc.stdout)
	}
	// A free slot takes a new peer.
	a.Close()
	waitFor(t, 10*time.Second, "a slot to free up", func() bool {
		c := dial(t, addr)
		io.WriteString(c, "fourth\n")
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return isTimeout(err) // held open: accepted
	})
	wc.waitOutput("fourth\n", 10*time.Second)
}

func TestAllowDeny(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		wc := start(t, "wirecat", "listen", "-k", addr, "--allow", "10.0.0.0/8")
		waitListen(t, port)
		c := dial(t, addr)
		io.WriteString(c, "intruder\n")
		expectClosed(t, c)
		wc.waitStderr("not allowed", 10*time.Second)
		if wc.stdout.String() != "" {
			t.Fatalf("a refused peer was heard: %q", wc.stdout)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		wc := start(t, "wirecat", "listen", addr, "--allow", "127.0.0.1")
		waitListen(t, port)
		c := dial(t, addr)
		io.WriteString(c, "friend\n")
		wc.waitOutput("friend\n", 10*time.Second)
	})
	t.Run("denied", func(t *testing.T) {
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		wc := start(t, "wirecat", "listen", "-k", addr, "--deny", "127.0.0.0/8")
		waitListen(t, port)
		expectClosed(t, dial(t, addr))
		wc.waitStderr("not allowed", 10*time.Second)
	})
	t.Run("bad cidr", func(t *testing.T) {
		_, stderr, code := runWirecat(t, "", 10*time.Second, "listen", "127.0.0.1:1", "--allow", "10.0.0.0/99")
		if code != 2 || !strings.Contains(stderr, "10.0.0.0/99") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
}

func TestIPv6Loopback(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 on loopback: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr := fmt.Sprintf("[::1]:%d", port)
	wc := startIn(t, strings.NewReader("from the listener\n"), "wirecat", "listen", addr, "-o", "text", "--frame", "line")
	waitListen(t, port)
	out, stderr, code := runWirecat(t, "over six\n", 10*time.Second, "connect", addr)
	if code != 0 || out != "from the listener\n" {
		t.Fatalf("connect: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("listen: exit %d: %s", code, wc.stderr)
	}
	if !regexp.MustCompile(`\[::1\]:\d+ ← over six`).MatchString(wc.stdout.String()) {
		t.Fatalf("text output should tag the IPv6 peer: %q", wc.stdout)
	}
}

func TestInputHex(t *testing.T) {
	p := newPeer(t)
	wc := startIn(t, strings.NewReader("68 69 0a\n\n01ff\r\n"), "wirecat", "connect", p.addr, "-i", "hex")
	c := p.accept()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "hi\n\x01\xff" {
		t.Fatalf("peer got %q, %v", b, err)
	}
	c.Close()
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, wc.stderr)
	}

	t.Run("with a framing", func(t *testing.T) {
		p := newPeer(t)
		wc := startIn(t, strings.NewReader("01 02\n03\n"), "wirecat", "connect", p.addr, "-i", "hex", "--frame", "len:u8")
		c := p.accept()
		b, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(b, []byte{2, 1, 2, 1, 3}) {
			t.Fatalf("peer got %x, %v", b, err)
		}
		c.Close()
		wc.wait(10 * time.Second)
	})

	t.Run("bad line", func(t *testing.T) {
		p := newPeer(t)
		wc := startIn(t, strings.NewReader("01\nzz\n"), "wirecat", "connect", p.addr, "-i", "hex")
		c := p.accept()
		go io.Copy(io.Discard, c)
		code := wc.wait(10 * time.Second)
		if code == 0 || !strings.Contains(wc.stderr.String(), "line 2") {
			t.Fatalf("exit %d, stderr %q: want a failure naming line 2", code, wc.stderr)
		}
	})
}

func TestOutputHexLikeHexdump(t *testing.T) {
	p := newPeer(t)
	wc := start(t, "wirecat", "connect", p.addr, "-o", "hex", "--recv-only")
	c := p.accept()
	io.WriteString(c, "hello\x00world, this is a board\n")
	c.Close()
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, wc.stderr)
	}
	want := "00000000  68 65 6c 6c 6f 00 77 6f  72 6c 64 2c 20 74 68 69  |hello.world, thi|\n" +
		"00000010  73 20 69 73 20 61 20 62  6f 61 72 64 0a           |s is a board.|\n"
	out := wc.stdout.String()
	if !strings.Contains(out, want) {
		t.Fatalf("hex output:\n%s\nwant the hexdump -C lines:\n%s", out, want)
	}
	if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{3} #\d+ 127\.0\.0\.1:\d+ ← 29 bytes$`).MatchString(out) {
		t.Fatalf("hex output lacks a header naming the peer and size:\n%s", out)
	}
	if _, err := exec.LookPath("hexdump"); err == nil {
		hd := exec.Command("hexdump", "-C")
		hd.Stdin = strings.NewReader("hello\x00world, this is a board\n")
		ref, _ := hd.Output()
		if !strings.HasPrefix(string(ref), want) {
			t.Fatalf("hexdump -C says:\n%s\nwe say:\n%s", ref, want)
		}
	}
}

func TestOutputTextColour(t *testing.T) {
	run := func(t *testing.T, env []string, args ...string) string {
		p := newPeer(t)
		cmd := exec.Command(bin, append([]string{"connect", p.addr, "-o", "text", "--recv-only"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c := p.accept()
		io.WriteString(c, "reading\n")
		c.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("wirecat: %v", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatal("wirecat did not exit")
		}
		return out.String()
	}
	noColor := withoutEnv("NO_COLOR")
	if out := run(t, noColor, "--color", "always"); !strings.Contains(out, "\x1b[") {
		t.Fatalf("--color always: no ANSI codes in %q", out)
	}
	if out := run(t, noColor, "--color", "auto"); strings.Contains(out, "\x1b[") || !strings.Contains(out, "reading") {
		t.Fatalf("--color auto into a pipe: %q", out)
	}
	if out := run(t, noColor); strings.Contains(out, "\x1b[") {
		t.Fatalf("default into a pipe: %q", out)
	}
	if out := run(t, noColor, "--color", "never"); strings.Contains(out, "\x1b[") {
		t.Fatalf("--color never: %q", out)
	}
}

// withoutEnv returns settings that blank the named variables for a child.
func withoutEnv(names ...string) []string {
	var env []string
	for _, n := range names {
		env = append(env, n+"=")
	}
	return env
}

// On a terminal, auto colours unless NO_COLOR is set. script(1) gives the
// child a pseudo-terminal.
func TestOutputTextColourOnATerminal(t *testing.T) {
	need(t, "script")
	run := func(noColor string) string {
		p := newPeer(t)
		shell := fmt.Sprintf("%s connect %s -o text --recv-only", bin, p.addr)
		cmd := exec.Command("script", "-qec", shell, "/dev/null")
		cmd.Env = append(os.Environ(), "NO_COLOR="+noColor, "TERM=xterm")
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stdin = strings.NewReader("")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c := p.accept()
		io.WriteString(c, "on a tty\n")
		c.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatal("script did not exit")
		}
		if !strings.Contains(out.String(), "on a tty") {
			t.Fatalf("no output through the terminal: %q", out.String())
		}
		return out.String()
	}
	if out := run(""); !strings.Contains(out, "\x1b[") {
		t.Fatalf("auto on a terminal should colour: %q", out)
	}
	if out := run("1"); strings.Contains(out, "\x1b[") {
		t.Fatalf("NO_COLOR=1 on a terminal should not colour: %q", out)
	}
}

func TestOutputJSONEvents(t *testing.T) {
	p := newPeer(t)
	wc := start(t, "wirecat", "connect", p.addr, "-o", "json", "--recv-only")
	c := p.accept()
	io.WriteString(c, "hello")
	wc.waitOutput(`"text":"hello"`, 10*time.Second)
	c.Write([]byte{0, 1, 0xff})
	time.Sleep(50 * time.Millisecond)
	c.Close()
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, wc.stderr)
	}
	type ev struct {
		Time, Event, Peer, Dir, From, Text, B64, By, Transport, Role string
		Conn                                                         uint64
		Len                                                          *int
	}
	var evs []ev
	sc := bufio.NewScanner(strings.NewReader(wc.stdout.String()))
	for sc.Scan() {
		var e ev
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not JSON: %q: %v", sc.Text(), err)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Fatalf("bad time in %q", sc.Text())
		}
		evs = append(evs, e)
	}
	if len(evs) != 4 {
		t.Fatalf("want open, 2 data, close; got %d events:\n%s", len(evs), wc.stdout)
	}
	kinds := []string{evs[0].Event, evs[1].Event, evs[2].Event, evs[3].Event}
	if strings.Join(kinds, ",") != "open,data,data,close" {
		t.Fatalf("events %v", kinds)
	}
	for _, e := range evs {
		if e.Conn != evs[0].Conn || e.Peer != p.addr {
			t.Fatalf("every event should name conn %d and peer %s: %+v", evs[0].Conn, p.addr, e)
		}
	}
	if evs[0].Transport != "tcp" || evs[0].Role != "client" {
		t.Fatalf("open: %+v", evs[0])
	}
	if evs[1].Text != "hello" || evs[1].B64 != "" || evs[1].Dir != "in" || evs[1].From != "server" || evs[1].Len == nil || *evs[1].Len != 5 {
		t.Fatalf("text payload: %+v", evs[1])
	}
	if raw, _ := base64.StdEncoding.DecodeString(evs[2].B64); evs[2].Text != "" || !bytes.Equal(raw, []byte{0, 1, 0xff}) {
		t.Fatalf("binary payload should be b64: %+v", evs[2])
	}
	if evs[3].By != "server" {
		t.Fatalf("close should say the server closed: %+v", evs[3])
	}
}

func TestListenKeepOpenStdinToEveryPeer(t *testing.T) {
	for _, mode := range []string{"text", "json"} {
		t.Run(mode, func(t *testing.T) {
			port := freePort(t)
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			wc := start(t, "wirecat", "listen", "-k", addr, "--frame", "line", "-o", mode)
			waitListen(t, port)
			peers := make([]net.Conn, 3)
			for i := range peers {
				peers[i] = dial(t, addr)
				fmt.Fprintf(peers[i], "peer %d here\n", i)
				wc.waitOutput(fmt.Sprintf("peer %d here", i), 10*time.Second)
			}
			fmt.Fprint(wc.stdin, "to everyone\n")
			for i, c := range peers {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil || line != "to everyone\n" {
					t.Fatalf("peer %d got %q, %v", i, line, err)
				}
			}
			// Each message is tagged with the peer that sent it.
			out := wc.stdout.String()
			for i, c := range peers {
				tag := c.LocalAddr().String()
				var re *regexp.Regexp
				if mode == "text" {
					re = regexp.MustCompile(`#\d+ ` + regexp.QuoteMeta(tag) + ` ← peer ` + strconv.Itoa(i) + ` here`)
				} else {
					re = regexp.MustCompile(`"peer":"` + regexp.QuoteMeta(tag) + `".*"text":"peer ` + strconv.Itoa(i) + ` here"`)
				}
				if !re.MatchString(out) {
					t.Fatalf("peer %d's message not tagged with %s:\n%s", i, tag, out)
				}
			}
			// What wirecat sent is shown too, tagged with its direction and
			// peer (issue 15: -o text and json show both directions).
			for _, c := range peers {
				tag := regexp.QuoteMeta(c.LocalAddr().String())
				re := regexp.MustCompile(`#\d+ ` + tag + ` → to everyone`)
				if mode == "json" {
					re = regexp.MustCompile(`"peer":"` + tag + `","dir":"out".*"text":"to everyone"`)
				}
				waitFor(t, 5*time.Second, "what wirecat sent to "+tag+" shown", func() bool { return re.MatchString(wc.stdout.String()) })
			}
		})
	}
}

func TestResetByPeer(t *testing.T) {
	p := newPeer(t)
	wc := start(t, "wirecat", "connect", p.addr) // stdin stays open
	c := p.accept()
	io.WriteString(c, "partial data\n")
	wc.waitOutput("partial data\n", 10*time.Second)
	c.(*net.TCPConn).SetLinger(0) // close with RST
	c.Close()
	code := wc.wait(10 * time.Second)
	if code != 1 || !strings.Contains(wc.stderr.String(), "connection reset by peer") {
		t.Fatalf("exit %d, stderr %q", code, wc.stderr)
	}
	if n := strings.Count(wc.stderr.String(), "\n"); n != 1 {
		t.Fatalf("want one line on stderr: %q", wc.stderr)
	}
	if wc.stdout.String() != "partial data\n" {
		t.Fatalf("stdout %q", wc.stdout)
	}

	t.Run("python", func(t *testing.T) {
		need(t, "python3")
		port := freePort(t)
		py := `
import socket, struct, sys, time
l = socket.create_server(('127.0.0.1', int(sys.argv[1])))
print("ready", flush=True)
c, _ = l.accept()
c.sendall(b"before the reset\n")
time.sleep(0.3)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
c.close()
`
		srv := start(t, "python3", "-c", py, strconv.Itoa(port))
		srv.waitOutput("ready", 10*time.Second)
		wc := start(t, "wirecat", "connect", fmt.Sprintf("127.0.0.1:%d", port), "--frame", "line")
		code := wc.wait(10 * time.Second)
		if code != 1 || !strings.Contains(wc.stderr.String(), "connection reset by peer") || wc.stdout.String() != "before the reset\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, wc.stdout, wc.stderr)
		}
	})
}

func TestInterruptFlushesAndExits(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wc := start(t, "wirecat", "listen", "-k", addr, "--frame", "line")
	waitListen(t, port)
	// One peer sent 1000 lines and holds on; another streams without end.
	quiet := dial(t, addr)
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(quiet, "quiet %d\n", i)
	}
	busy := dial(t, addr)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := fmt.Fprintf(busy, "busy %d\n", i); err != nil {
				return
			}
		}
	}()
	wc.waitOutput("quiet 999\n", 10*time.Second)
	wc.waitOutput("busy 1000\n", 10*time.Second)
	wc.cmd.Process.Signal(os.Interrupt)
	begin := time.Now()
	code := wc.wait(5 * time.Second)
	if took := time.Since(begin); took > 2*time.Second {
		t.Fatalf("Ctrl-C took %v", took)
	}
	if code != 0 && code != 130 {
		t.Fatalf("exit %d after Ctrl-C: %s", code, wc.stderr)
	}
	out := wc.stdout.String()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("output ends with a partial line: %q", out[max(0, len(out)-40):])
	}
	next := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("mangled line %q", line)
		}
		n, _ := strconv.Atoi(f[1])
		if n != next[f[0]] {
			t.Fatalf("%s: line %d after %d: a line was lost", f[0], n, next[f[0]]-1)
		}
		next[f[0]] = n + 1
	}
	if next["quiet"] != 1000 {
		t.Fatalf("%d quiet lines", next["quiet"])
	}
}

func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, stderr, code := runWirecat(t, "", 10*time.Second, "listen", l.Addr().String())
	if code != 1 || !strings.Contains(stderr, "address already in use") || !strings.Contains(stderr, l.Addr().String()) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if n := strings.Count(stderr, "\n"); n != 1 {
		t.Fatalf("want one line: %q", stderr)
	}
}
