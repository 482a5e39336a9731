package chaos

// Issue 9, item 1: a relay forwards the exact wire bytes, whatever --frame
// and -o say, and a recording lets show --pcap and replay put them back.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// exactSize is the random payload of each relay case: 8 MiB in CI (1 MiB
// with the race detector's slow binary), the 256 MiB under
// -chaos.soak.
func exactSize() int {
	switch {
	case *soak:
		return 256 << 20
	case raceEnabled:
		return 1 << 20
	}
	return 8 << 20
}

// randomBytes returns n bytes of every value, CR and LF included, from seed.
func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:8]) }

// echoPeer echoes every connection and reports the sha256 of what each
// that sent something received. It serves more than one: a stray
// connection (another test on the machine probing the port) must not take
// the place of the one measured.
func echoPeer(t *testing.T) (port int, got <-chan string) {
	return peer(t, true)
}

func peer(t *testing.T, echo bool) (port int, got <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Minute))
				h := sha256.New()
				var n int64
				if echo {
					n, _ = io.Copy(c, io.TeeReader(c, h))
					c.(*net.TCPConn).CloseWrite()
				} else {
					n, _ = io.Copy(h, c)
				}
				if n > 0 {
					select {
					case ch <- hex.EncodeToString(h.Sum(nil)[:8]):
					default:
					}
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, ch
}

// through sends data through a relay at port and returns what came back.
func through(t *testing.T, port int, data []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+itoa(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	go func() {
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
	}()
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading back: %v after %d bytes", err, len(back))
	}
	return back
}

// Random bytes through relay with every framing and every view: what the
// target receives and what the client gets back are the bytes sent.
func TestRelayExactBytes(t *testing.T) {
	data := randomBytes(exactSize(), 1)
	want := sum(data)
	frames := []string{"line", "crlf", "delim:END", "len:u16be", "slip", "cobs", "lua:" + filepath.Join("..", "scripts", "end-framer.lua")}
	views := [][]string{{"-o", "text"}, {"-o", "hex"}, {"-o", "json"}, {"--record", ""}}
	for _, frame := range frames {
		for _, view := range views {
			name := strings.TrimPrefix(strings.Join(view, ""), "-o") + "/" + filepath.Base(frame)
			t.Run(name, func(t *testing.T) {
				target, got := echoPeer(t)
				port := e2e.FreePort(t)
				args := []string{"relay", "127.0.0.1:" + itoa(port), "127.0.0.1:" + itoa(target), "--frame", frame}
				if view[0] == "--record" {
					view = []string{"--record", filepath.Join(t.TempDir(), "r.jsonl")}
				}
				p := e2e.StartWith(t, nil, io.Discard, "wirecat", append(args, view...)...)
				e2e.WaitListen(t, port)
				start := time.Now()
				back := through(t, port, data)
				took := time.Since(start)
				var up string
				select {
				case up = <-got:
				case <-time.After(time.Minute):
					t.Fatal("the target never finished")
				}
				if up != want {
					t.Errorf("client→server: the target got sha256 %s, sent %s", up, want)
				}
				if s := sum(back); s != want {
					t.Errorf("server→client: %d bytes back (sha256 %s), %d sent (%s); first difference at %d", len(back), s, len(data), want, firstDiff(back, data))
				}
				figure(t, "relay exact "+name, "%d MiB both ways in %v, sha256 %s", len(data)>>20, took.Round(time.Millisecond), map[bool]string{true: "identical", false: "DIFFERENT"}[up == want && sum(back) == want])
				if view[0] == "--record" {
					p.Signal(syscall.SIGINT, 5*time.Second)
					if out, stderr, code := e2e.Run(t, "", time.Minute, "show", view[1], "-o", "json"); code != 0 || out == "" {
						t.Errorf("show of the recording: exit %d: %s", code, stderr)
					}
				}
			})
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// An HTTP request and response, CRLFs and binary body, through relay
// --frame line between curl and python3's http.server.
func TestRelayLineHTTP(t *testing.T) {
	e2e.Need(t, "curl", "python3")
	dir := t.TempDir()
	body := randomBytes(1<<20, 2)
	os.WriteFile(filepath.Join(dir, "blob.bin"), body, 0o644)
	web := e2e.FreePort(t)
	srv := e2e.Start(t, "python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, itoa(web))
	e2e.WaitListen(t, web)
	port := e2e.FreePort(t)
	rec := filepath.Join(dir, "http.jsonl")
	e2e.StartWith(t, nil, io.Discard, "wirecat", "relay", "127.0.0.1:"+itoa(port), "127.0.0.1:"+itoa(web), "--frame", "line", "-o", "text", "--record", rec)
	e2e.WaitListen(t, port)
	out, err := exec.Command("curl", "-sS", "--max-time", "30", "http://127.0.0.1:"+itoa(port)+"/blob.bin").Output()
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	if !bytes.Equal(out, body) {
		t.Fatalf("curl got %d bytes (sha256 %s), the file is %d (%s)", len(out), sum(out), len(body), sum(body))
	}
	// The server saw a well-formed request: every header line ends in CRLF.
	e2e.WaitFor(t, 5*time.Second, "the request in the server's log", func() bool { return strings.Contains(srv.Stderr.String(), "GET /blob.bin") })
	if !strings.Contains(srv.Stderr.String(), `"GET /blob.bin HTTP/1.1" 200`) {
		t.Errorf("server log: %s", srv.Stderr)
	}
}

// show --pcap of a relay recording made with --frame line: tshark follows
// the exact bytes, CRs, newlines and an unterminated tail included.
func TestShowPcapExactBytes(t *testing.T) {
	e2e.Need(t, "tshark")
	data := append(randomBytes(200<<10, 3), "last line\r\nno newline at the end"...)
	target, got := echoPeer(t)
	port := e2e.FreePort(t)
	dir := t.TempDir()
	rec := filepath.Join(dir, "r.jsonl")
	p := e2e.StartWith(t, nil, io.Discard, "wirecat", "relay", "127.0.0.1:"+itoa(port), "127.0.0.1:"+itoa(target), "--frame", "line", "--record", rec)
	e2e.WaitListen(t, port)
	back := through(t, port, data)
	<-got
	p.Signal(syscall.SIGINT, 5*time.Second)
	if !bytes.Equal(back, data) {
		t.Fatalf("relay changed the bytes")
	}
	pcap := filepath.Join(dir, "r.pcapng")
	if _, stderr, code := e2e.Run(t, "", time.Minute, "show", rec, "--pcap", pcap); code != 0 {
		t.Fatalf("show --pcap: exit %d: %s", code, stderr)
	}
	out, err := exec.Command("tshark", "-n", "-r", pcap, "-q", "-z", "follow,tcp,raw,0").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	// follow,raw prints each segment as hex on a line, the second node's
	// indented by a tab.
	var client, server []byte
	for _, l := range strings.Split(string(out), "\n") {
		indented := strings.HasPrefix(l, "\t")
		b, err := hex.DecodeString(strings.TrimSpace(l))
		if err != nil || len(b) == 0 {
			continue
		}
		if indented {
			server = append(server, b...)
		} else {
			client = append(client, b...)
		}
	}
	if !bytes.Equal(client, data) || !bytes.Equal(server, data) {
		t.Fatalf("tshark follows %d bytes from the client (sha256 %s) and %d from the server (%s); %d were sent (%s)",
			len(client), sum(client), len(server), sum(server), len(data), sum(data))
	}
	figure(t, "show --pcap exact", "%d bytes each way followed by tshark, sha256 identical", len(data))
}

// replay of a relay recording sends the exact bytes that crossed the wire.
func TestReplayExactBytes(t *testing.T) {
	data := append(randomBytes(1<<20, 4), "a\r\nb\rEND\xc0tail"...)
	for _, frame := range []string{"line", "delim:END", "slip", "cobs", "lua:" + filepath.Join("..", "scripts", "end-framer.lua")} {
		t.Run(filepath.Base(frame), func(t *testing.T) {
			dir := t.TempDir()
			rec := filepath.Join(dir, "r.jsonl")
			target, got := sinkPeer(t)
			port := e2e.FreePort(t)
			p := e2e.StartWith(t, nil, io.Discard, "wirecat", "relay", "127.0.0.1:"+itoa(port), "127.0.0.1:"+itoa(target), "--frame", frame, "--record", rec)
			e2e.WaitListen(t, port)
			through(t, port, data)
			if s := <-got; s != sum(data) {
				t.Fatalf("the relay changed the bytes")
			}
			p.Signal(syscall.SIGINT, 5*time.Second)

			target, got = sinkPeer(t)
			if _, stderr, code := e2e.Run(t, "", time.Minute, "replay", rec, "--as", "client", "--to", "127.0.0.1:"+itoa(target), "--speed", "max"); code != 0 {
				t.Fatalf("replay: exit %d: %s", code, stderr)
			}
			if s := <-got; s != sum(data) {
				t.Fatalf("replay sent sha256 %s, the recording's wire was %s", s, sum(data))
			}
		})
	}
}

// sinkPeer reads every connection to its end and reports the sha256 of
// what each that sent something received.
func sinkPeer(t *testing.T) (port int, got <-chan string) {
	return peer(t, false)
}
