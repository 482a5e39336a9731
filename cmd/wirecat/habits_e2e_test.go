package main

// Issue 15, "Netcat habits and the missing everyday jobs": the forms nc users
// type, help and --version, the port-0 notice, both directions in the views,
// connect -z, -w and -s, listen --broker/--chat and listen --send/--until.
// Each runs the built binary against real peers (nc.openbsd, ncat, socat,
// python3) over loopback.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Defect 3: `wirecat listen 5000` answered "missing port".
func TestListenBarePortAndConnectHostPort(t *testing.T) {
	need(t, "nc.openbsd")
	port := freePort(t)
	wc := start(t, "wirecat", "listen", strconv.Itoa(port))
	waitListen(t, port)
	nc := startIn(t, strings.NewReader("from nc\n"), "nc.openbsd", "-N", "127.0.0.1", strconv.Itoa(port))
	wc.waitOutput("from nc\n", 10*time.Second)
	wc.stdin.Close()
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("listen PORT exited %d: %s", code, wc.stderr)
	}
	nc.wait(10 * time.Second)

	// connect HOST PORT, to nc -l; and listen HOST PORT, from nc.
	port = freePort(t)
	srv := start(t, "nc.openbsd", "-l", "127.0.0.1", strconv.Itoa(port))
	waitListen(t, port)
	_, stderr, code := runWirecat(t, "from wirecat\n", 10*time.Second, "connect", "127.0.0.1", strconv.Itoa(port))
	if code != 0 {
		t.Fatalf("connect HOST PORT exited %d: %s", code, stderr)
	}
	srv.waitOutput("from wirecat\n", 10*time.Second)

	port = freePort(t)
	wc = start(t, "wirecat", "listen", "127.0.0.1", strconv.Itoa(port))
	waitListen(t, port)
	startIn(t, strings.NewReader("two args\n"), "nc.openbsd", "-N", "127.0.0.1", strconv.Itoa(port))
	wc.waitOutput("two args\n", 10*time.Second)

	// A bare port is no address to connect to: the error says what to write.
	_, stderr, code = runWirecat(t, "", 10*time.Second, "connect", "5000")
	if code != exitUsage || !strings.Contains(stderr, `bad address "5000": missing host (want host:port, e.g. 127.0.0.1:5000, or HOST PORT)`) {
		t.Fatalf("connect 5000: exit %d, %q", code, stderr)
	}
	_, stderr, code = runWirecat(t, "", 10*time.Second, "listen", "127.0.0.1:5000", "5001")
	if code != exitUsage || !strings.Contains(stderr, `already has a port`) {
		t.Fatalf("listen host:port port: exit %d, %q", code, stderr)
	}
}

func TestBareUsageHelpAndVersion(t *testing.T) {
	stdout, stderr, code := runWirecat(t, "", 10*time.Second)
	if code != exitUsage || stdout != "" || !strings.HasPrefix(stderr, "Usage: wirecat <command>") || !strings.Contains(stderr, "wirecat help COMMAND") {
		t.Fatalf("bare wirecat: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	help, _, code := runWirecat(t, "", 10*time.Second, "help")
	if code != 0 || help != stderr {
		t.Fatalf("wirecat help: exit %d, and not the usage bare wirecat prints:\n%s", code, help)
	}
	for _, cmd := range []string{"listen", "connect", "send", "relay"} {
		got, _, code := runWirecat(t, "", 10*time.Second, "help", cmd)
		want, _, _ := runWirecat(t, "", 10*time.Second, cmd, "--help")
		if code != 0 || got != want || !strings.HasPrefix(got, "Usage: wirecat "+cmd) {
			t.Errorf("wirecat help %s: exit %d, differs from --help:\n%s", cmd, code, got)
		}
	}
	_, stderr, code = runWirecat(t, "", 10*time.Second, "help", "lisen")
	if code != exitUsage || !strings.Contains(stderr, `unknown command "lisen" (want listen, connect,`) {
		t.Fatalf("help lisen: exit %d, %q", code, stderr)
	}
	v1, _, code1 := runWirecat(t, "", 10*time.Second, "--version")
	v2, _, code2 := runWirecat(t, "", 10*time.Second, "version")
	if code1 != 0 || code2 != 0 || v1 != v2 || !strings.HasPrefix(v1, "wirecat ") {
		t.Fatalf("--version %q (exit %d) vs version %q (exit %d)", v1, code1, v2, code2)
	}
}

var boundLine = regexp.MustCompile(`wirecat: (?:listening on|relaying) (\w+)://127\.0\.0\.1:(\d+)`)

// boundPort waits for the port-0 notice and returns the port it names.
func boundPort(t *testing.T, p *proc, scheme string) int {
	t.Helper()
	var port int
	waitFor(t, 10*time.Second, "the bound address on stderr", func() bool {
		m := boundLine.FindStringSubmatch(p.stderr.String())
		if m == nil || m[1] != scheme {
			return false
		}
		port, _ = strconv.Atoi(m[2])
		return port > 0
	})
	return port
}

// A listener on port 0 says which port it got, without -v.
func TestPortZeroSaysWhereItListens(t *testing.T) {
	need(t, "socat")
	wc := start(t, "wirecat", "listen", "127.0.0.1:0")
	port := boundPort(t, wc, "tcp")
	startIn(t, strings.NewReader("via socat\n"), "socat", "-", fmt.Sprintf("TCP:127.0.0.1:%d", port))
	wc.waitOutput("via socat\n", 10*time.Second)

	u := start(t, "wirecat", "listen", "-u", "127.0.0.1:0")
	uport := boundPort(t, u, "udp")
	startIn(t, strings.NewReader("datagram\n"), "socat", "-", fmt.Sprintf("UDP:127.0.0.1:%d", uport))
	u.waitOutput("datagram\n", 10*time.Second)

	// relay too, and a fixed port stays quiet without -v.
	target := goEcho(t)
	r := start(t, "wirecat", "relay", "127.0.0.1:0", target)
	rport := boundPort(t, r, "tcp")
	out, _ := request(fmt.Sprintf("127.0.0.1:%d", rport), "through the relay\n", 5*time.Second)
	if out != "through the relay\n" {
		t.Fatalf("relay on its chosen port answered %q", out)
	}
	fixed := freePort(t)
	q := start(t, "wirecat", "listen", fmt.Sprintf("127.0.0.1:%d", fixed))
	waitListen(t, fixed)
	time.Sleep(100 * time.Millisecond)
	if s := q.stderr.String(); s != "" {
		t.Fatalf("a listener on a port the user chose printed %q", s)
	}
}

// -o text, hex and json show both directions, tagged; raw only what arrived.
func TestOutputShowsBothDirections(t *testing.T) {
	need(t, "socat")
	echo := func() int {
		port := freePort(t)
		start(t, "socat", fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr", port), "EXEC:cat")
		waitListen(t, port)
		return port
	}
	port := echo()
	out, stderr, code := runWirecat(t, "ping\n", 10*time.Second, "connect", "127.0.0.1", strconv.Itoa(port), "--frame", "line", "-o", "text")
	if code != 0 || !regexp.MustCompile(`(?m) → ping\n.* ← ping\n`).MatchString(out) {
		t.Fatalf("connect -o text: exit %d, %s\nstdout:\n%s", code, stderr, out)
	}
	port = echo()
	out, _, _ = runWirecat(t, "ping\n", 10*time.Second, "connect", "127.0.0.1", strconv.Itoa(port), "-o", "hex")
	if !strings.Contains(out, "→ 5 bytes\n") || !strings.Contains(out, "← 5 bytes\n") || strings.Count(out, "|ping.|") != 2 {
		t.Fatalf("connect -o hex:\n%s", out)
	}
	port = echo()
	out, _, _ = runWirecat(t, "ping\n", 10*time.Second, "connect", "127.0.0.1", strconv.Itoa(port))
	if out != "ping\n" {
		t.Fatalf("connect -o raw printed %q: only the received bytes belong there", out)
	}
	port = echo()
	out, _, code = runWirecat(t, "", 10*time.Second, "send", fmt.Sprintf("127.0.0.1:%d", port), "hello", "-o", "json", "--replies", "1")
	var dirs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e struct{ Event, Dir, Text string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("send -o json: %v in %q", err, line)
		}
		if e.Event == "data" {
			dirs = append(dirs, e.Dir+":"+e.Text)
		}
	}
	if code != 0 || !slices.Equal(dirs, []string{"out:hello", "in:hello"}) {
		t.Fatalf("send -o json: exit %d, data events %v\n%s", code, dirs, out)
	}
	// listen: what stdin sends, tagged →
	lport := freePort(t)
	wc := start(t, "wirecat", "listen", fmt.Sprintf("127.0.0.1:%d", lport), "--frame", "line", "-o", "text")
	waitListen(t, lport)
	c := dial(t, fmt.Sprintf("127.0.0.1:%d", lport))
	fmt.Fprintf(wc.stdin, "to the peer\n")
	fmt.Fprintf(c, "to wirecat\n")
	wc.waitOutput("→ to the peer\n", 10*time.Second)
	wc.waitOutput("← to wirecat\n", 10*time.Second)
}

// connect -z finds the same open ports as nc -z, exits 0 if any, 1 if none.
func TestScanLikeNetcat(t *testing.T) {
	need(t, "nc.openbsd")
	var open []int
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		open = append(open, l.Addr().(*net.TCPAddr).Port)
	}
	closed := freePort(t)
	spec := fmt.Sprintf("%d,%d,%d-%d,%d", closed, open[2], open[0], open[0], open[1])
	out, stderr, code := runWirecat(t, "", 20*time.Second, "connect", "-z", "127.0.0.1", spec)
	want := fmt.Sprintf("%d open\n%d open\n%d open\n", open[2], open[0], open[1])
	if code != 0 || out != want {
		t.Fatalf("connect -z %s: exit %d, %q, want %q; %s", spec, code, out, want, stderr)
	}
	// nc -zv names the same ports (on stderr), in the order given.
	ncOut, _ := exec.Command("nc.openbsd", "-zv", "127.0.0.1", strconv.Itoa(closed), strconv.Itoa(open[2]), strconv.Itoa(open[0]), strconv.Itoa(open[1])).CombinedOutput()
	var ncOpen []string
	for _, m := range regexp.MustCompile(`Connection to 127\.0\.0\.1 (\d+) port .* succeeded`).FindAllStringSubmatch(string(ncOut), -1) {
		ncOpen = append(ncOpen, m[1]+" open")
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); !slices.Equal(got, ncOpen) {
		t.Fatalf("wirecat found %v, nc -z %v", got, ncOpen)
	}
	// nc's form: the ports as separate arguments.
	out, _, code = runWirecat(t, "", 20*time.Second, "connect", "-z", "127.0.0.1", strconv.Itoa(closed), strconv.Itoa(open[1]))
	if code != 0 || out != fmt.Sprintf("%d open\n", open[1]) {
		t.Fatalf("connect -z HOST P1 P2: exit %d, %q", code, out)
	}
	_, stderr, code = runWirecat(t, "", 20*time.Second, "connect", "-z", "127.0.0.1", strconv.Itoa(closed))
	if code != exitFailure || !strings.Contains(stderr, fmt.Sprintf("wirecat: no port of %d on 127.0.0.1 accepts a connection", closed)) {
		t.Fatalf("no open port: exit %d, %q", code, stderr)
	}
	for _, bad := range [][]string{{"127.0.0.1", "0"}, {"127.0.0.1", "5-1"}, {"127.0.0.1"}, {"-u", "127.0.0.1", "53"}} {
		_, stderr, code = runWirecat(t, "", 10*time.Second, append([]string{"connect", "-z"}, bad...)...)
		if code != exitUsage || !strings.HasPrefix(stderr, "wirecat: ") {
			t.Errorf("connect -z %v: exit %d, %q", bad, code, stderr)
		}
	}
}

// -w gives up on a peer that never answers; -s picks the source address.
func TestDialTimeoutAndSource(t *testing.T) {
	need(t, "python3")
	// A listener with a full backlog that never accepts: SYNs go unanswered.
	port := freePort(t)
	silent := start(t, "python3", "-c", `
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(0)
fill = []
try:
    while len(fill) < 10:
        fill.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.3))
except OSError:
    print("full", flush=True); time.sleep(30)`, strconv.Itoa(port))
	silent.waitOutput("full", 10*time.Second)
	begin := time.Now()
	_, stderr, code := runWirecat(t, "", 10*time.Second, "connect", "-w", "300ms", "127.0.0.1", strconv.Itoa(port))
	took := time.Since(begin)
	if code != exitFailure || !strings.Contains(stderr, "timed out (no answer within --timeout 300ms)") || took > 3*time.Second {
		t.Fatalf("connect -w 300ms to a silent port: exit %d after %v, %q", code, took, stderr)
	}
	_, stderr, code = runWirecat(t, "", 10*time.Second, "send", "-w", "300ms", fmt.Sprintf("127.0.0.1:%d", port), "x")
	if code != exitFailure || !strings.Contains(stderr, "no answer within --timeout 300ms") {
		t.Fatalf("send -w: exit %d, %q", code, stderr)
	}

	// The peer sees the source address (and port) asked for.
	peerAddr := func() (string, *proc) {
		port := freePort(t)
		p := start(t, "python3", "-c", `
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); print("ready", flush=True)
c, a = s.accept(); print("peer %s:%d" % a, flush=True); c.recv(100)`, strconv.Itoa(port))
		p.waitOutput("ready", 10*time.Second)
		return fmt.Sprintf("127.0.0.1:%d", port), p
	}
	addr, p := peerAddr()
	src := freePort(t)
	_, stderr, code = runWirecat(t, "hi\n", 10*time.Second, "connect", "-s", fmt.Sprintf("127.0.0.2:%d", src), addr)
	if code != 0 {
		t.Fatalf("connect -s: exit %d, %s", code, stderr)
	}
	p.waitOutput(fmt.Sprintf("peer 127.0.0.2:%d\n", src), 10*time.Second)
	addr, p = peerAddr()
	if _, stderr, code = runWirecat(t, "", 10*time.Second, "send", "--source", "127.0.0.3", addr, "hi", "--wait", "0"); code != 0 {
		t.Fatalf("send --source: exit %d, %s", code, stderr)
	}
	p.waitOutput("peer 127.0.0.3:", 10*time.Second)
	// relay dials its target from --source.
	addr, p = peerAddr()
	r := start(t, "wirecat", "relay", "127.0.0.1:0", addr, "-s", "127.0.0.4")
	rport := boundPort(t, r, "tcp")
	c := dial(t, fmt.Sprintf("127.0.0.1:%d", rport))
	c.Write([]byte("hi"))
	p.waitOutput("peer 127.0.0.4:", 10*time.Second)

	_, stderr, code = runWirecat(t, "", 10*time.Second, "connect", "-s", "192.0.2.1", addr)
	if code != exitFailure || !strings.Contains(stderr, "--source 192.0.2.1 is not an address of this machine") {
		t.Fatalf("foreign --source: exit %d, %q", code, stderr)
	}
	_, stderr, code = runWirecat(t, "", 10*time.Second, "connect", "-s", "1.2.3.4:99999", addr)
	if code != exitUsage || !strings.Contains(stderr, "--source: bad address") {
		t.Fatalf("bad --source: exit %d, %q", code, stderr)
	}
}

// lineReader reads lines from a connection with a deadline per line.
type lineReader struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func newLineReader(t *testing.T, c net.Conn) *lineReader {
	return &lineReader{t: t, c: c, r: bufio.NewReader(c)}
}

func (l *lineReader) next() string {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := l.r.ReadString('\n')
	if err != nil {
		l.t.Fatalf("reading a line: %q, %v", s, err)
	}
	return s
}

// --broker: what one client sends reaches every other client, not itself;
// an ncat client is one of them.
func TestListenBroker(t *testing.T) {
	need(t, "ncat")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wc := startIn(t, devNull(t), "wirecat", "listen", "-k", addr, "--broker", "-v")
	waitListen(t, port)
	a := dial(t, addr)
	wc.waitStderr("conn 1: accepted", 10*time.Second)
	b := dial(t, addr)
	wc.waitStderr("conn 2: accepted", 10*time.Second)
	n := start(t, "ncat", "127.0.0.1", strconv.Itoa(port))
	wc.waitStderr("conn 3: accepted", 10*time.Second)

	fmt.Fprintf(a, "from a\n")
	rb := newLineReader(t, b)
	if got := rb.next(); got != "from a\n" {
		t.Fatalf("b got %q", got)
	}
	n.waitOutput("from a\n", 10*time.Second)
	fmt.Fprintf(n.stdin, "from ncat\n")
	if got := rb.next(); got != "from ncat\n" {
		t.Fatalf("b got %q", got)
	}
	ra := newLineReader(t, a)
	if got := ra.next(); got != "from ncat\n" {
		t.Fatalf("a got %q: its own message came back, or ncat's did not arrive", got)
	}
	wc.waitOutput("from a\nfrom ncat\n", 10*time.Second) // the listener sees it all
	// One client leaving does not end the others.
	n.stdin.Close()
	n.cmd.Process.Kill()
	fmt.Fprintf(b, "still here\n")
	if got := ra.next(); got != "still here\n" {
		t.Fatalf("a got %q", got)
	}
}

// --chat tags every message with its sender and announces joins and leaves.
func TestListenChat(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wc := startIn(t, devNull(t), "wirecat", "listen", "-k", addr, "--chat", "-v")
	waitListen(t, port)
	a := dial(t, addr)
	wc.waitStderr("conn 1: accepted", 10*time.Second)
	ra := newLineReader(t, a)
	b := dial(t, addr)
	rb := newLineReader(t, b)
	if got := ra.next(); !strings.HasPrefix(got, "<announce> <user2> joined from 127.0.0.1:") {
		t.Fatalf("a got %q", got)
	}
	fmt.Fprintf(b, "hello\n")
	if got := ra.next(); got != "<user2> hello\n" {
		t.Fatalf("a got %q", got)
	}
	fmt.Fprintf(a, "hi b\n")
	if got := rb.next(); got != "<user1> hi b\n" {
		t.Fatalf("b got %q", got)
	}
	b.Close()
	if got := ra.next(); got != "<announce> <user2> left\n" {
		t.Fatalf("a got %q", got)
	}
	if _, stderr, code := runWirecat(t, "", 10*time.Second, "listen", addr, "--chat"); code != exitUsage || !strings.Contains(stderr, "need -k") {
		t.Fatalf("--chat without -k: exit %d, %q", code, stderr)
	}
}

// The server side of the LED example as a one-liner: exit 0 once the board
// reports, 3 when it does not.
func TestListenSendUntil(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wc := startIn(t, devNull(t), "wirecat", "listen", addr, "--frame", "line", "--send", "LED ON", "--until", "STATE ON", "--wait", "5s")
	waitListen(t, port)
	board := startIn(t, devNull(t), "wirecat", "simulate", "../../scripts/led-board.lua", "--connect", addr, "--duration", "10s")
	if code := wc.wait(15 * time.Second); code != 0 {
		t.Fatalf("listen --send --until exited %d: %s", code, wc.stderr)
	}
	if out := wc.stdout.String(); out != "STATE OFF\nSTATE ON\n" {
		t.Fatalf("stdout %q", out)
	}
	board.wait(15 * time.Second)

	// A board that never says STATE ON: exit 3, saying what was missing.
	port = freePort(t)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	wc = startIn(t, devNull(t), "wirecat", "listen", addr, "--frame", "line", "--send", "LED ON", "--until", "STATE ON", "--wait", "300ms")
	waitListen(t, port)
	c := dial(t, addr)
	r := newLineReader(t, c)
	if got := r.next(); got != "LED ON\n" {
		t.Fatalf("the peer got %q", got)
	}
	fmt.Fprintf(c, "ERROR no LED\n")
	if code := wc.wait(10 * time.Second); code != exitUnmet || !strings.Contains(wc.stderr.String(), `wirecat: "STATE ON" was not received (nothing more arrived within --wait 300ms)`) {
		t.Fatalf("exit %d, %q", code, wc.stderr)
	}
	// --replies with a python peer that answers twice and closes.
	need(t, "python3")
	port = freePort(t)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	wc = startIn(t, devNull(t), "wirecat", "listen", addr, "--frame", "line", "--send", "ping", "--replies", "2")
	waitListen(t, port)
	start(t, "python3", "-c", `
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = c.makefile("rb"); f.readline(); c.sendall(b"one\ntwo\n"); c.close()`, strconv.Itoa(port))
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("--replies 2: exit %d, %s", code, wc.stderr)
	}
	if _, stderr, code := runWirecat(t, "", 10*time.Second, "listen", "-k", addr, "--send", "x"); code != exitUsage || !strings.Contains(stderr, "not with -k") {
		t.Fatalf("--send with -k: exit %d, %q", code, stderr)
	}
}

// listen -u --exec: one process per sender, its stdout answering that
// sender; nc.openbsd and python senders.
func TestUDPExecPerSender(t *testing.T) {
	need(t, "python3", "nc.openbsd")
	wc := startIn(t, devNull(t), "wirecat", "listen", "-u", "-k", "127.0.0.1:0", "--frame", "line", "--exec", `echo "hi $WIRECAT_CONN_ID"; exec sed -u s/^/ack:/`)
	// --frame line: each line the command writes is one datagram (raw, a
	// read may hold both of its lines)
	port := boundPort(t, wc, "udp")
	py := start(t, "python3", "-c", `
import socket, sys
P = int(sys.argv[1])
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
for i, s in enumerate(socks):
    s.settimeout(5); s.sendto(b"from %d\n" % i, ("127.0.0.1", P))
for i, s in enumerate(socks):
    got = sorted([s.recv(100), s.recv(100)])
    print(i, got[0].decode().strip(), "|", got[1].decode().strip(), flush=True)
socks[1].sendto(b"again\n", ("127.0.0.1", P)); print(1, socks[1].recv(100).decode().strip(), flush=True)
`, strconv.Itoa(port))
	if code := py.wait(15 * time.Second); code != 0 {
		t.Fatalf("python senders exited %d: %s", code, py.stderr)
	}
	lines := strings.Split(strings.TrimSpace(py.stdout.String()), "\n")
	ids := map[string]bool{}
	for i, line := range lines[:3] {
		m := regexp.MustCompile(`^(\d) ack:from (\d) \| hi (\d+)$`).FindStringSubmatch(line)
		if m == nil || m[1] != strconv.Itoa(i) || m[2] != m[1] {
			t.Fatalf("sender %d got %q", i, line)
		}
		ids[m[3]] = true
	}
	if len(ids) != 3 {
		t.Fatalf("three senders, %d processes: %v", len(ids), lines)
	}
	if lines[3] != "1 ack:again" {
		t.Fatalf("the second datagram of a sender went elsewhere: %q", lines[3])
	}
	// nc.openbsd as a sender; a command that exits after one answer is
	// started again by the sender's next datagram.
	wc2 := startIn(t, devNull(t), "wirecat", "listen", "-u", "127.0.0.1:0", "--exec", "head -n1 | sed -u s/^/once:/")
	port2 := boundPort(t, wc2, "udp")
	nc := start(t, "nc.openbsd", "-u", "127.0.0.1", strconv.Itoa(port2))
	fmt.Fprintf(nc.stdin, "first\n")
	nc.waitOutput("once:first\n", 10*time.Second)
	time.Sleep(100 * time.Millisecond) // the first process has exited
	fmt.Fprintf(nc.stdin, "second\n")
	nc.waitOutput("once:first\nonce:second\n", 10*time.Second)
}

// replay connects from -s and gives up after -w, as the other commands do.
func TestReplaySourceAndTimeout(t *testing.T) {
	need(t, "python3")
	target := goEcho(t)
	rec := t.TempDir() + "/s.jsonl"
	if _, stderr, code := runWirecat(t, "", 10*time.Second, "send", target, "hello", "--replies", "1", "--record", rec); code != 0 {
		t.Fatalf("recording: exit %d, %s", code, stderr)
	}
	port := freePort(t)
	p := start(t, "python3", "-c", `
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); print("ready", flush=True)
c, a = s.accept(); print("peer %s" % a[0], flush=True); c.sendall(c.recv(100)); c.close()`, strconv.Itoa(port))
	p.waitOutput("ready", 10*time.Second)
	if _, stderr, code := runWirecat(t, "", 20*time.Second, "replay", rec, "--to", fmt.Sprintf("127.0.0.1:%d", port), "-s", "127.0.0.6", "-w", "2s", "--speed", "max"); code != 0 {
		t.Fatalf("replay -s: exit %d, %s", code, stderr)
	}
	p.waitOutput("peer 127.0.0.6\n", 10*time.Second)
	if _, stderr, code := runWirecat(t, "", 10*time.Second, "replay", rec, "--as", "server", "--listen", "127.0.0.1:0", "-w", "1s"); code != exitUsage || !strings.Contains(stderr, "a server does not connect") {
		t.Fatalf("replay --as server -w: exit %d, %q", code, stderr)
	}
}

// A port that never answers is "no answer" after -w, not a hang.
func TestScanSilentPort(t *testing.T) {
	need(t, "python3")
	port := freePort(t)
	silent := start(t, "python3", "-c", `
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(0)
fill = []
try:
    while len(fill) < 10:
        fill.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.3))
except OSError:
    print("full", flush=True); time.sleep(30)`, strconv.Itoa(port))
	silent.waitOutput("full", 10*time.Second)
	begin := time.Now()
	out, stderr, code := runWirecat(t, "", 10*time.Second, "connect", "-z", "-w", "300ms", "-o", "json", "127.0.0.1", strconv.Itoa(port))
	want := fmt.Sprintf(`{"host":"127.0.0.1","port":%d,"state":"no answer"}`+"\n", port)
	if code != exitFailure || out != want || time.Since(begin) > 5*time.Second {
		t.Fatalf("exit %d after %v, %q (want %q); %s", code, time.Since(begin), out, want, stderr)
	}
}

// simulate -w and -s are every net.connect's defaults.
func TestSimulateDialDefaults(t *testing.T) {
	need(t, "python3")
	port := freePort(t)
	p := start(t, "python3", "-c", `
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); print("ready", flush=True)
c, a = s.accept(); print("peer %s" % a[0], flush=True); c.recv(100)`, strconv.Itoa(port))
	p.waitOutput("ready", 10*time.Second)
	script := t.TempDir() + "/dev.lua"
	os.WriteFile(script, []byte(`local c = assert(net.connect(TARGET)); c:send("hi"); c:close()`), 0o644)
	if _, stderr, code := runWirecat(t, "", 20*time.Second, "simulate", script, "--connect", fmt.Sprintf("127.0.0.1:%d", port), "-s", "127.0.0.8", "-w", "2s"); code != 0 {
		t.Fatalf("simulate -s: exit %d, %s", code, stderr)
	}
	p.waitOutput("peer 127.0.0.8\n", 10*time.Second)

	// A silent server: every connect gives up after -w.
	silent := freePort(t)
	sp := start(t, "python3", "-c", `
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(0)
fill = []
try:
    while len(fill) < 10:
        fill.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.3))
except OSError:
    print("full", flush=True); time.sleep(30)`, strconv.Itoa(silent))
	sp.waitOutput("full", 10*time.Second)
	os.WriteFile(script, []byte(`local c, err = net.connect(TARGET); if not c then print("no: " .. err) end`), 0o644)
	begin := time.Now()
	out, stderr, code := runWirecat(t, "", 20*time.Second, "simulate", script, "--connect", fmt.Sprintf("127.0.0.1:%d", silent), "-w", "300ms")
	if code != 0 || !strings.HasPrefix(out, "no: ") || time.Since(begin) > 5*time.Second {
		t.Fatalf("simulate -w 300ms: exit %d after %v, %q, %s", code, time.Since(begin), out, stderr)
	}
}
