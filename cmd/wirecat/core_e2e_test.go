package main

// Issue 2: listen, connect and send against real peers.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The seed's Python server (IoT communication using Python sockets), on a
// port of the test's choosing.
const seedServer = `
import socket, sys
server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_address = ('127.0.0.1', int(sys.argv[1]))
server_socket.bind(server_address)
server_socket.listen(5)
print("Server listening on {}:{}".format(*server_address), flush=True)
client_socket, client_address = server_socket.accept()
data = client_socket.recv(1024)
print("Received data from {}: {}".format(*client_address, data.decode()), flush=True)
print("payload:", data.decode(), flush=True)  # the seed's line above prints the port, not the data
`

// The seed's Python client.
const seedClient = `
import socket, sys
client_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_address = ('127.0.0.1', int(sys.argv[1]))
client_socket.connect(server_address)
print("Connected to the server {}:{}".format(*server_address))
message = "Hello, server!"
client_socket.send(message.encode())
print("Sent data to the server: {}".format(message))
client_socket.close()
`

func TestSeedPythonServerWirecatSends(t *testing.T) {
	need(t, "python3")
	port := freePort(t)
	srv := start(t, "python3", "-c", seedServer, strconv.Itoa(port))
	srv.waitOutput("Server listening", 10*time.Second)
	_, stderr, code := runWirecat(t, "", 10*time.Second, "send", fmt.Sprintf("127.0.0.1:%d", port), "Hello, server!", "--wait", "200ms")
	if code != 0 {
		t.Fatalf("send exited %d: %s", code, stderr)
	}
	srv.waitOutput("Received data from 127.0.0.1", 10*time.Second)
	srv.waitOutput("payload: Hello, server!\n", 10*time.Second)
	if !strings.Contains(srv.stdout.String(), "payload: Hello, server!\n") {
		t.Fatalf("server got %q", srv.stdout)
	}
}

func TestSeedPythonClientWirecatListens(t *testing.T) {
	need(t, "python3")
	port := freePort(t)
	wc := start(t, "wirecat", "listen", fmt.Sprintf("127.0.0.1:%d", port))
	waitListen(t, port)
	cl := startIn(t, strings.NewReader(""), "python3", "-c", seedClient, strconv.Itoa(port))
	if code := cl.wait(10 * time.Second); code != 0 {
		t.Fatalf("client exited %d: %s", code, cl.stderr)
	}
	wc.stdin.Close()
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("listen exited %d: %s", code, wc.stderr)
	}
	if got := wc.stdout.String(); got != "Hello, server!" {
		t.Fatalf("stdout = %q, want the client's message exactly", got)
	}
}

func TestHTTPGetOverRawSocket(t *testing.T) {
	need(t, "python3")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>hello from the board</h1>\n"), 0o644)
	port := freePort(t)
	srv := start(t, "python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, strconv.Itoa(port))
	_ = srv
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port))
	out, stderr, code := runWirecat(t, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n", 10*time.Second, "connect", fmt.Sprintf("127.0.0.1:%d", port))
	if code != 0 {
		t.Fatalf("connect exited %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "HTTP/1.0 200") || !strings.HasSuffix(out, "<h1>hello from the board</h1>\n") {
		t.Fatalf("response not complete:\n%s", out)
	}
	if stderr != "" {
		t.Fatalf("stderr should be empty, got %q", stderr)
	}
}

func TestENDDelimitedStream(t *testing.T) {
	need(t, "python3")
	port := freePort(t)
	wc := startIn(t, strings.NewReader(""), "wirecat", "listen", fmt.Sprintf("127.0.0.1:%d", port), "--frame", "delim:END", "--recv-only")
	waitListen(t, port)
	// The board sends its readings in pieces that split the delimiter.
	py := `
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
for piece in [b'first val', b'ueEN', b'Dsecond', b'E', b'ND', b'thirdEND']:
    s.sendall(piece); time.sleep(0.02)
s.close()
`
	cl := startIn(t, strings.NewReader(""), "python3", "-c", py, strconv.Itoa(port))
	cl.wait(10 * time.Second)
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, wc.stderr)
	}
	if got, want := wc.stdout.String(), "first value\nsecond\nthird\n"; got != want {
		t.Fatalf("stdout = %q, want %q", got, want)
	}
}

func TestCommaColonReadingsJSON(t *testing.T) {
	need(t, "socat")
	port := freePort(t)
	wc := startIn(t, strings.NewReader(""), "wirecat", "listen", fmt.Sprintf("127.0.0.1:%d", port), "--frame", "delim:,", "-o", "json")
	waitListen(t, port)
	sc := startIn(t, strings.NewReader("21.5:40,22.0:41,22.5:43,"), "socat", "-", fmt.Sprintf("TCP:127.0.0.1:%d", port))
	sc.wait(10 * time.Second)
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, wc.stderr)
	}
	var texts []string
	for _, line := range strings.Split(strings.TrimSpace(wc.stdout.String()), "\n") {
		if m := regexp.MustCompile(`"event":"data".*"text":"([^"]*)"`).FindStringSubmatch(line); m != nil {
			texts = append(texts, m[1])
		}
	}
	if got := strings.Join(texts, " "); got != "21.5:40 22.0:41 22.5:43" {
		t.Fatalf("readings = %q\n%s", got, wc.stdout)
	}
	for _, ev := range []string{`"event":"open"`, `"event":"close"`} {
		if !strings.Contains(wc.stdout.String(), ev) {
			t.Errorf("json output lacks %s", ev)
		}
	}
}

func TestSocatAndNcatInterop(t *testing.T) {
	need(t, "socat", "ncat")
	t.Run("ncat listens, wirecat connects", func(t *testing.T) {
		port := freePort(t)
		nc := startIn(t, strings.NewReader("from ncat\n"), "ncat", "-l", "127.0.0.1", strconv.Itoa(port))
		waitListen(t, port)
		out, stderr, code := runWirecat(t, "from wirecat\n", 10*time.Second, "connect", fmt.Sprintf("127.0.0.1:%d", port))
		if code != 0 || out != "from ncat\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
		nc.wait(10 * time.Second)
		if nc.stdout.String() != "from wirecat\n" {
			t.Fatalf("ncat got %q", nc.stdout)
		}
	})
	t.Run("wirecat listens, socat connects", func(t *testing.T) {
		port := freePort(t)
		wc := startIn(t, strings.NewReader("from wirecat\n"), "wirecat", "listen", fmt.Sprintf("127.0.0.1:%d", port))
		waitListen(t, port)
		sc := startIn(t, strings.NewReader("from socat\n"), "socat", "-t", "2", "-", fmt.Sprintf("TCP:127.0.0.1:%d", port))
		if code := sc.wait(10 * time.Second); code != 0 {
			t.Fatalf("socat exit %d: %s", code, sc.stderr)
		}
		if code := wc.wait(10 * time.Second); code != 0 {
			t.Fatalf("wirecat exit %d: %s", code, wc.stderr)
		}
		if wc.stdout.String() != "from socat\n" || sc.stdout.String() != "from wirecat\n" {
			t.Fatalf("wirecat got %q, socat got %q", wc.stdout, sc.stdout)
		}
	})
}

func TestUDPListenTagsAndAnswers(t *testing.T) {
	need(t, "socat")
	port := freeUDPPort(t)
	wc := start(t, "wirecat", "listen", "-u", fmt.Sprintf("127.0.0.1:%d", port), "-o", "text")
	waitUDP(t, port)
	sc := start(t, "socat", "-t", "3", "-", fmt.Sprintf("UDP:127.0.0.1:%d", port))
	fmt.Fprint(sc.stdin, "23.5:41\n")
	wc.waitOutput("23.5:41", 10*time.Second)
	if !regexp.MustCompile(`#\d+ 127\.0\.0\.1:\d+ ← 23\.5:41\\n`).MatchString(wc.stdout.String()) {
		t.Fatalf("datagram not tagged with its sender: %q", wc.stdout)
	}
	fmt.Fprint(wc.stdin, "ack\n")
	sc.waitOutput("ack\n", 10*time.Second)
}

func TestUnixSockets(t *testing.T) {
	need(t, "socat")
	sock := filepath.Join(t.TempDir(), "board.sock")
	wc := startIn(t, strings.NewReader("hello unix\n"), "wirecat", "listen", "unix://"+sock)
	waitFor(t, 10*time.Second, "the socket file", func() bool { _, err := os.Stat(sock); return err == nil })
	sc := startIn(t, strings.NewReader("from socat\n"), "socat", "-t", "2", "-", "UNIX-CONNECT:"+sock)
	sc.wait(10 * time.Second)
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, wc.stderr)
	}
	if wc.stdout.String() != "from socat\n" || sc.stdout.String() != "hello unix\n" {
		t.Fatalf("wirecat got %q, socat got %q", wc.stdout, sc.stdout)
	}
	t.Run("unixgram", func(t *testing.T) {
		gsock := filepath.Join(t.TempDir(), "g.sock")
		wc := start(t, "wirecat", "listen", "unixgram://"+gsock, "--frame", "line")
		waitFor(t, 10*time.Second, "the socket file", func() bool { _, err := os.Stat(gsock); return err == nil })
		out, stderr, code := runWirecat(t, "", 10*time.Second, "send", "unixgram://"+gsock, "reading 1", "--frame", "line", "--wait", "0")
		if code != 0 {
			t.Fatalf("send exit %d: %s %s", code, out, stderr)
		}
		wc.waitOutput("reading 1\n", 10*time.Second)
	})
}

func TestListenKeepOpenManyClients(t *testing.T) {
	port := freePort(t)
	wc := startIn(t, nil, "wirecat", "listen", "-k", fmt.Sprintf("127.0.0.1:%d", port), "--frame", "line", "--recv-only")
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port))
	const clients, each = 50, 20
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < each; j++ {
				c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				fmt.Fprintf(c, "client %d line %d\n", i, j)
				c.Close()
			}
		}(i)
	}
	wg.Wait()
	waitFor(t, 15*time.Second, "every line on stdout", func() bool {
		return strings.Count(wc.stdout.String(), "\n") >= clients*each
	})
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(wc.stdout.String()))
	for sc.Scan() {
		seen[sc.Text()] = true
	}
	if len(seen) != clients*each {
		t.Fatalf("%d distinct lines, want %d", len(seen), clients*each)
	}
}

func TestExitCodesAndErrors(t *testing.T) {
	closed := freePort(t)
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"refused", []string{"send", fmt.Sprintf("127.0.0.1:%d", closed), "x"}, 1, "connection refused"},
		{"bad address", []string{"connect", "127.0.0.1"}, 2, `"127.0.0.1"`},
		{"bad scheme", []string{"connect", "foo://127.0.0.1:5"}, 2, `"foo://127.0.0.1:5"`},
		{"bad framing", []string{"connect", "127.0.0.1:5", "--frame", "len:u24"}, 2, "delim:SEP"},
		{"bad flag", []string{"connect", "--nope", "127.0.0.1:5"}, 2, "--nope"},
		{"bad escape", []string{"send", "127.0.0.1:5", `\q`}, 2, `\q`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runWirecat(t, "", 10*time.Second, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, c.code, stderr)
			}
			if !strings.Contains(stderr, c.msg) || !strings.HasPrefix(stderr, "wirecat: ") {
				t.Fatalf("stderr %q should start with 'wirecat: ' and name %q", stderr, c.msg)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if n := len(lines) - strings.Count(stderr, "wirecat: hint: "); n != 1 {
				t.Fatalf("the error takes %d lines (want one, and maybe a hint): %q", n, stderr)
			}
		})
	}
}

func TestSendExpectations(t *testing.T) {
	need(t, "ncat")
	port := freePort(t)
	// An echo server that answers each line.
	start(t, "ncat", "-k", "-l", "127.0.0.1", strconv.Itoa(port), "--exec", "/bin/cat")
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	out, stderr, code := runWirecat(t, "", 10*time.Second, "send", addr, "--frame", "line", "LED ON", "LED OFF", "--replies", "2")
	if code != 0 || out != "LED ON\nLED OFF\n" {
		t.Fatalf("--replies 2: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	_, stderr, code = runWirecat(t, "", 10*time.Second, "send", addr, "--frame", "line", "ping", "--replies", "2", "--wait", "300ms")
	if code != 3 || !strings.Contains(stderr, "expected 2 replies, got 1") {
		t.Fatalf("unmet --replies: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runWirecat(t, "", 10*time.Second, "send", addr, `a\x00b\n`, "--until", `\x00b`)
	if code != 0 {
		t.Fatalf("--until with escapes: exit %d, stderr %q", code, stderr)
	}
	out, _, code = runWirecat(t, "", 10*time.Second, "send", addr, "--hex", "01 02 ff 0a", "--until", `\xff`, "-o", "hex")
	if code != 0 || !strings.Contains(out, "01 02 ff 0a") {
		t.Fatalf("--hex: exit %d, out %q", code, out)
	}
	begin := time.Now()
	out, _, code = runWirecat(t, "", 10*time.Second, "send", addr, "--frame", "line", "tick", "--repeat", "3", "--interval", "100ms", "--replies", "3")
	if code != 0 || out != "tick\ntick\ntick\n" || time.Since(begin) < 200*time.Millisecond {
		t.Fatalf("--repeat/--interval: exit %d, out %q after %v", code, out, time.Since(begin))
	}
}

func TestHalfCloseThenPrintUntilPeerCloses(t *testing.T) {
	need(t, "python3")
	port := freePort(t)
	// A server that answers only once the client's half of the stream ended.
	py := `
import socket, sys
l = socket.create_server(('127.0.0.1', int(sys.argv[1])))
print("ready", flush=True)
c, _ = l.accept()
n = 0
while True:
    b = c.recv(4096)
    if not b: break
    n += len(b)
c.sendall(b"%d\n" % n)
c.close()
`
	srv := start(t, "python3", "-c", py, strconv.Itoa(port))
	srv.waitOutput("ready", 10*time.Second)
	out, stderr, code := runWirecat(t, "12345", 10*time.Second, "connect", fmt.Sprintf("127.0.0.1:%d", port))
	if code != 0 || strings.TrimSpace(out) != "5" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	// send --half-close gets the same answer, without waiting out --wait.
	port = freePort(t)
	srv = start(t, "python3", "-c", py, strconv.Itoa(port))
	srv.waitOutput("ready", 10*time.Second)
	begin := time.Now()
	out, stderr, code = runWirecat(t, "", 10*time.Second, "send", fmt.Sprintf("127.0.0.1:%d", port), "abc", "--half-close", "--wait", "5s")
	if code != 0 || out != "3\n" || time.Since(begin) > 4*time.Second {
		t.Fatalf("send --half-close: exit %d, stdout %q, stderr %q after %v", code, out, stderr, time.Since(begin))
	}
}

func TestExecKeepsStdoutQuiet(t *testing.T) {
	port := freePort(t)
	wc := startIn(t, strings.NewReader(""), "wirecat", "listen", fmt.Sprintf("127.0.0.1:%d", port), "--exec", "tr a-z A-Z")
	waitListen(t, port)
	out, stderr, code := runWirecat(t, "shout\n", 10*time.Second, "connect", fmt.Sprintf("127.0.0.1:%d", port))
	if code != 0 || out != "SHOUT\n" {
		t.Fatalf("connect: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if code := wc.wait(10 * time.Second); code != 0 || wc.stdout.String() != "" {
		t.Fatalf("listen --exec: exit %d, stdout %q (should be empty without -o)", code, wc.stdout)
	}
}
