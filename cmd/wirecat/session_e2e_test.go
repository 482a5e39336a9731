package main

// Sessions end to end (issue 4): recordings made against real servers are
// shown, exported for tshark, replayed with --check against the same and a
// changed server, and served back as a mock to curl.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ledServer is a python3 board: each line "LED X" is answered "LED is X"
// (upper-cased answer when a second argument is given: a changed firmware).
const ledServer = `
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
changed = len(sys.argv) > 2
def serve(c):
    for line in c.makefile("rb"):
        state = line.decode().split()[-1]
        reply = "LED is " + state
        c.sendall(((reply.upper() if changed else reply) + "\n").encode())
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`

func startLED(t *testing.T, changed bool) int {
	t.Helper()
	need(t, "python3")
	port := freePort(t)
	args := []string{"-c", ledServer, strconv.Itoa(port)}
	if changed {
		args = append(args, "changed")
	}
	start(t, "python3", args...)
	waitListen(t, port)
	return port
}

// recordLED records a conversation with the board through connect or send.
func recordLED(t *testing.T, port int, how string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "led.jsonl")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var out string
	var code int
	switch how {
	case "connect":
		out, _, code = runWirecat(t, "LED ON\nLED OFF\n", 10*time.Second, "connect", addr, "--frame", "line", "--record", file)
	case "send":
		out, _, code = runWirecat(t, "", 10*time.Second, "send", addr, "--frame", "line", "--replies", "2", "--record", file, "LED ON", "LED OFF")
	}
	if code != 0 || out != "LED is ON\nLED is OFF\n" {
		t.Fatalf("recording with %s: exit %d, stdout %q", how, code, out)
	}
	return file
}

func TestReplayCheckSameAndChangedServer(t *testing.T) {
	port := startLED(t, false)
	changed := startLED(t, true)
	for _, how := range []string{"connect", "send"} {
		t.Run(how, func(t *testing.T) {
			file := recordLED(t, port, how)
			out, stderr, code := runWirecat(t, "", 20*time.Second, "replay", file, "--check")
			if code != 0 || out != "LED is ON\nLED is OFF\n" {
				t.Fatalf("replay --check against the same server: exit %d, stdout %q, stderr %q", code, out, stderr)
			}
			_, stderr, code = runWirecat(t, "", 20*time.Second, "replay", file, "--check", "--to", fmt.Sprintf("127.0.0.1:%d", changed))
			if code != 3 {
				t.Fatalf("replay --check against a changed server: exit %d, stderr %q", code, stderr)
			}
			// "LED is ON" is message 2 or 3, as the reply overtook "LED OFF" or not.
			if !regexp.MustCompile(`wirecat: replay: connection 1, message [23] from the server differs from the recording`).MatchString(stderr) {
				t.Errorf("diff lacks its heading:\n%s", stderr)
			}
			for _, want := range []string{
				"first difference at byte 4",
				"expected (9 bytes):\n  > LED is ON\n",
				"got (9 bytes):\n  > LED IS ON\n",
			} {
				if !strings.Contains(stderr, want) {
					t.Errorf("diff lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
}

// TestReplayRecordsItself: --record on replay writes a session that
// replays the same way.
func TestReplayRecordsItself(t *testing.T) {
	port := startLED(t, false)
	file := recordLED(t, port, "connect")
	again := filepath.Join(t.TempDir(), "again.jsonl")
	if _, stderr, code := runWirecat(t, "", 20*time.Second, "replay", file, "--check", "--speed", "max", "--record", again); code != 0 {
		b, _ := os.ReadFile(file)
		t.Fatalf("replay --record: exit %d: %s\nrecording:\n%s", code, stderr, b)
	}
	out, stderr, code := runWirecat(t, "", 20*time.Second, "show", again, "-o", "json")
	if code != 0 || strings.Count(out, `"event":"data"`) != 4 || !strings.Contains(out, `"text":"LED is OFF"`) {
		t.Fatalf("show of the replay's recording: exit %d %s\n%s", code, stderr, out)
	}
	if _, stderr, code := runWirecat(t, "", 20*time.Second, "replay", again, "--check"); code != 0 {
		t.Fatalf("replaying the replay: exit %d: %s", code, stderr)
	}
}

// TestReplayServerMockSatisfiesCurl: an HTTP exchange recorded with
// connect, served back by replay --as server, gives curl the same body.
func TestReplayServerMockSatisfiesCurl(t *testing.T) {
	need(t, "python3", "curl")
	dir := t.TempDir()
	body := "<h1>board 7</h1>\ntemperature 21.5\n"
	os.WriteFile(filepath.Join(dir, "status.html"), []byte(body), 0o644)
	port := freePort(t)
	start(t, "python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, strconv.Itoa(port))
	waitListen(t, port)
	file := filepath.Join(t.TempDir(), "http.jsonl")
	out, stderr, code := runWirecat(t, "GET /status.html HTTP/1.0\r\n\r\n", 10*time.Second,
		"connect", fmt.Sprintf("127.0.0.1:%d", port), "--record", file)
	if code != 0 || !strings.HasSuffix(out, body) {
		t.Fatalf("recording: exit %d %s\n%s", code, stderr, out)
	}
	mock := freePort(t)
	srv := startIn(t, strings.NewReader(""), "wirecat", "replay", file, "--as", "server", "--listen", fmt.Sprintf("127.0.0.1:%d", mock), "--once")
	waitListen(t, mock)
	got, err := exec.Command("curl", "-s", "--max-time", "10", fmt.Sprintf("http://127.0.0.1:%d/status.html", mock)).Output()
	if err != nil || string(got) != body {
		t.Fatalf("curl from the mock: %v, %q", err, got)
	}
	if code := srv.wait(10 * time.Second); code != 0 {
		t.Fatalf("replay --as server --once: exit %d: %s", code, srv.stderr)
	}
	if !strings.Contains(srv.stdout.String(), "GET /status.html HTTP/1.1") {
		t.Errorf("the mock did not print curl's request: %q", srv.stdout)
	}
}

// TestReplayServerKeepsAccepting: without --once the mock serves every
// connection until interrupted, and exits 0 on Ctrl-C.
func TestReplayServerKeepsAccepting(t *testing.T) {
	port := startLED(t, false)
	file := recordLED(t, port, "connect")
	mock := freePort(t)
	srv := startIn(t, strings.NewReader(""), "wirecat", "replay", file, "--as", "server", "--listen", fmt.Sprintf("127.0.0.1:%d", mock))
	waitListen(t, mock)
	for i := range 3 {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", mock))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "LED ON\nLED OFF\n")
		r := bufio.NewReader(c)
		a, _ := r.ReadString('\n')
		b, _ := r.ReadString('\n')
		c.Close()
		if a+b != "LED is ON\nLED is OFF\n" {
			t.Fatalf("connection %d to the mock got %q", i+1, a+b)
		}
	}
	srv.cmd.Process.Signal(os.Interrupt)
	if code := srv.wait(10 * time.Second); code != 130 { // SPEC: SIGINT exits 130
		t.Fatalf("interrupted mock: exit %d: %s", code, srv.stderr)
	}
}

func TestShowPcapFollowedByTshark(t *testing.T) {
	need(t, "tshark")
	port := startLED(t, false)
	file := recordLED(t, port, "connect")
	pcap := filepath.Join(t.TempDir(), "out.pcapng")
	if _, stderr, code := runWirecat(t, "", 10*time.Second, "show", file, "--pcap", pcap); code != 0 {
		t.Fatalf("show --pcap: exit %d: %s", code, stderr)
	}
	out, err := exec.Command("tshark", "-r", pcap, "-q", "-z", "follow,tcp,ascii,0").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	for _, want := range []string{"LED ON", "LED OFF", "LED is ON", "LED is OFF", fmt.Sprintf("127.0.0.1:%d", port)} {
		if !strings.Contains(string(out), want) {
			t.Errorf("tshark's follow lacks %q:\n%s", want, out)
		}
	}
}

func TestShowModes(t *testing.T) {
	port := startLED(t, false)
	file := recordLED(t, port, "connect")
	out, _, code := runWirecat(t, "", 10*time.Second, "show", file)
	if code != 0 || !strings.Contains(out, "→ LED ON") || !strings.Contains(out, "← LED is OFF") || !strings.HasPrefix(out, "session "+file+": connect") {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
	out, _, _ = runWirecat(t, "", 10*time.Second, "show", file, "-o", "hex")
	if !strings.Contains(out, "4c 45 44 20 69 73 20 4f  4e") {
		t.Fatalf("show -o hex:\n%s", out)
	}
	out, _, _ = runWirecat(t, "", 10*time.Second, "show", file, "-o", "json")
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 6 || !strings.Contains(out, `"text":"LED OFF"`) {
		t.Fatalf("show -o json (%d lines):\n%s", n, out)
	}
}

// TestShowDamagedFiles: what comes before the damage is shown, then the
// error names the file and line; other files are refused clearly.
func TestShowDamagedFiles(t *testing.T) {
	port := startLED(t, false)
	file := recordLED(t, port, "connect")
	data, _ := os.ReadFile(file)
	lines := strings.SplitAfter(string(data), "\n")
	dir := t.TempDir()

	cut := filepath.Join(dir, "cut.jsonl") // a recording cut off mid-line: header, open, 2 data, then half a line
	os.WriteFile(cut, []byte(strings.Join(lines[:4], "")+lines[4][:len(lines[4])/2]), 0o644)
	out, stderr, code := runWirecat(t, "", 10*time.Second, "show", cut, "-o", "json")
	if code != 1 || strings.Count(out, "\n") != 3 || strings.Count(out, `"event":"data"`) != 2 || !strings.Contains(stderr, cut+":5: truncated line") {
		t.Fatalf("truncated: exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}

	bad := filepath.Join(dir, "bad.jsonl") // a damaged line in the middle
	os.WriteFile(bad, []byte(strings.Join(lines[:3], "")+"{\"t\":0.5,\"ev\":\n"+strings.Join(lines[3:], "")), 0o644)
	out, stderr, code = runWirecat(t, "", 10*time.Second, "show", bad)
	if code != 1 || strings.Count(out, " LED ")+strings.Count(out, " bytes") != 1 || !strings.Contains(stderr, bad+":4: invalid JSON") {
		t.Fatalf("damaged: exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	pcap := filepath.Join(dir, "bad.pcapng")
	if _, stderr, code = runWirecat(t, "", 10*time.Second, "show", bad, "--pcap", pcap); code != 1 || !strings.Contains(stderr, ":4: invalid JSON") {
		t.Fatalf("damaged --pcap: exit %d %s", code, stderr)
	}
	if _, stderr, code = runWirecat(t, "", 10*time.Second, "replay", bad); code != 1 || !strings.Contains(stderr, ":4: invalid JSON") {
		t.Fatalf("damaged replay: exit %d %s", code, stderr)
	}

	newer := filepath.Join(dir, "newer.jsonl")
	os.WriteFile(newer, []byte(strings.Replace(data2(lines), `"version":2`, `"version":3`, 1)), 0o644)
	_, stderr, code = runWirecat(t, "", 10*time.Second, "show", newer)
	if code != 1 || !strings.Contains(stderr, "is version 3; this wirecat reads version 2 — upgrade wirecat") {
		t.Fatalf("newer: exit %d %s", code, stderr)
	}

	notSession := filepath.Join(dir, "notes.txt")
	os.WriteFile(notSession, []byte("hello\n"), 0o644)
	_, stderr, code = runWirecat(t, "", 10*time.Second, "show", notSession)
	if code != 1 || !strings.Contains(stderr, "not a wirecat session") || !strings.Contains(stderr, "hint:") {
		t.Fatalf("not a session: exit %d %s", code, stderr)
	}
	_, stderr, code = runWirecat(t, "", 10*time.Second, "show", filepath.Join(dir, "missing.jsonl"))
	if code != 2 || !strings.Contains(stderr, "no such file") { // SPEC: a missing input file is a usage error
		t.Fatalf("missing: exit %d %s", code, stderr)
	}
}

func data2(lines []string) string { return strings.Join(lines, "") }

// TestRecordingSurvivesKill9: a listen --record killed with SIGKILL leaves a
// file that show reads to its end without error.
func TestRecordingSurvivesKill9(t *testing.T) {
	port := freePort(t)
	file := filepath.Join(t.TempDir(), "dev.jsonl")
	srv := startIn(t, strings.NewReader(""), "wirecat", "listen", fmt.Sprintf("127.0.0.1:%d", port), "--frame", "line", "--record", file)
	waitListen(t, port)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 50 {
		fmt.Fprintf(c, "reading %d\n", i)
	}
	waitFor(t, 10*time.Second, "the recording to hold 50 readings", func() bool {
		b, _ := os.ReadFile(file)
		return strings.Contains(string(b), `"text":"reading 49"`)
	})
	srv.cmd.Process.Signal(syscall.SIGKILL)
	srv.wait(10 * time.Second)
	out, stderr, code := runWirecat(t, "", 10*time.Second, "show", file, "-o", "json")
	if code != 0 || stderr != "" || strings.Count(out, `"event":"data"`) != 50 {
		t.Fatalf("show after kill -9: exit %d, stderr %q\n%s", code, stderr, out)
	}
}

// TestReplayRefusals: a relay recording needs --as, a missing connection
// or a side that said nothing is named.
func TestReplayRefusals(t *testing.T) {
	dir := t.TempDir()
	relay := filepath.Join(dir, "relay.jsonl")
	os.WriteFile(relay, []byte(`{"wirecat":"session","version":1,"frame":"line","start":"2025-01-01T00:00:00Z"}
{"t":0,"ev":"open","conn":1,"transport":"tcp","role":"relay","local":"127.0.0.1:5000","remote":"127.0.0.1:40000"}
{"t":0.1,"ev":"data","conn":1,"from":"client","text":"hi"}
{"t":0.2,"ev":"close","conn":1,"by":"client"}
`), 0o644)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"replay", relay}, 2, "relay recording: it holds both sides; choose one with --as client or --as server"},
		{[]string{"replay", relay, "--as", "server"}, 2, "the server sent nothing in any connection: nothing to replay as server (try --as client)"},
		{[]string{"replay", relay, "--as", "client", "--conn", "4"}, 2, "has no connection 4 (it has 1)"},
		{[]string{"replay", relay, "--as", "client", "--listen", ":1"}, 2, "--listen is for --as server"},
		{[]string{"replay", relay, "--as", "client", "--speed", "fast"}, 2, `--speed "fast": want a positive factor`},
		{[]string{"replay", relay, "--as", "client", "--to", "127.0.0.1:1"}, 1, "connection refused"},
	} {
		_, stderr, code := runWirecat(t, "", 10*time.Second, c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("wirecat %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, stderr, c.code, c.msg)
		}
	}
}

// TestRelayRecordingReplaysAgainstTheServer: a relay recording names the
// target as its server, so replaying its client side reaches the real board.
func TestRelayRecordingReplaysAgainstTheServer(t *testing.T) {
	board := startLED(t, false)
	relayPort := freePort(t)
	file := filepath.Join(t.TempDir(), "relay.jsonl")
	rl := start(t, "wirecat", "relay", fmt.Sprintf("127.0.0.1:%d", relayPort), fmt.Sprintf("127.0.0.1:%d", board), "--frame", "line", "--record", file)
	waitListen(t, relayPort)
	out, stderr, code := runWirecat(t, "", 10*time.Second, "send", fmt.Sprintf("127.0.0.1:%d", relayPort), "--frame", "line", "--replies", "2", "LED ON", "LED OFF")
	if code != 0 || out != "LED is ON\nLED is OFF\n" {
		t.Fatalf("send through the relay: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	rl.cmd.Process.Signal(syscall.SIGTERM)
	rl.wait(10 * time.Second)
	out, stderr, code = runWirecat(t, "", 20*time.Second, "replay", file, "--as", "client", "--check")
	if code != 0 || out != "LED is ON\nLED is OFF\n" {
		t.Fatalf("replay --as client of a relay recording: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}
