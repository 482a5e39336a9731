package main

// Issue 15, "Daily use": each defect found by a new user has its test
// here, run against the built binary over loopback.

import (
	"bufio"
	"debug/elf"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

const scriptsDir = "../../scripts/"

// serveOnce accepts one connection on a fresh loopback port and runs
// serve on it; the listener closes when the test ends.
func serveOnce(t *testing.T, serve func(c net.Conn)) string {
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
		serve(c)
	}()
	return ln.Addr().String()
}

// Defect 1: simulate's stdout is what the script prints and what the
// built-in sink receives, never what the devices receive.
func TestSimulateStdoutIsOnlyPrintAndSink(t *testing.T) {
	t.Run("led-board", func(t *testing.T) {
		// The server's commands reach the board; the board prints nothing.
		addr := serveOnce(t, func(c net.Conn) {
			r := bufio.NewReader(c)
			r.ReadString('\n') // STATE OFF
			for _, cmd := range []string{"LED ON", "LED OFF", "BLINK"} {
				fmt.Fprintf(c, "%s\n", cmd)
				r.ReadString('\n')
			}
		})
		out, errOut, code := runWirecat(t, "", 20*time.Second, "simulate", scriptsDir+"led-board.lua", "--connect", addr)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if out != "" {
			t.Fatalf("stdout should be empty (led-board.lua prints nothing), got %q", out)
		}
	})
	t.Run("esp8266-get", func(t *testing.T) {
		const resp = "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"
		addr := serveOnce(t, func(c net.Conn) {
			bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, resp)
		})
		out, errOut, code := runWirecat(t, "", 20*time.Second, "simulate", scriptsDir+"esp8266-get.lua", "--connect", addr)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		// esp8266-get.lua prints the status line, then the body
		if out != "HTTP/1.0 200 OK\nhello\n" {
			t.Fatalf("stdout should be the response once, as the script prints it; got %q", out)
		}
	})
	t.Run("mqtt-publish", func(t *testing.T) {
		// A broker's binary CONNACK must not reach stdout.
		addr := serveOnce(t, func(c net.Conn) {
			buf := make([]byte, 512)
			c.Read(buf)
			c.Write([]byte{0x20, 0x02, 0x00, 0x00})
			io.Copy(io.Discard, c)
		})
		out, errOut, code := runWirecat(t, "", 20*time.Second, "simulate", scriptsDir+"mqtt-publish.lua",
			"--connect", addr, "--arg", "count=2", "--arg", "interval=0.01")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if out != "" {
			t.Fatalf("stdout should be empty, got %q", out)
		}
	})
}

// Defect 2: the command in analog.lua's header prints one reading a line,
// no blank lines.
func TestAnalogHeaderCommandOneReadingALine(t *testing.T) {
	for _, args := range [][]string{
		{"-o", "lines", "--frame", "line"}, // the header's command
		{},                                 // and without flags
	} {
		full := append([]string{"simulate", scriptsDir + "analog.lua", "--arg", "readings=4", "--arg", "interval=0.01"}, args...)
		out, errOut, code := runWirecat(t, "", 20*time.Second, full...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		if !regexp.MustCompile(`^(\d{1,4}\n){4}$`).MatchString(out) {
			t.Fatalf("%v: want 4 readings, one a line, got %q", args, out)
		}
	}
}

// ptyJob runs cmd as a background job of an interactive session: a
// pseudo-terminal is the session's controlling terminal and its stdin, and
// the job is in a process group of its own, not the terminal's foreground
// group. stdout goes to logFile. It returns the job's pid.
const ptyJob = `
import os, pty, sys, time
log, pidfile, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    # The session leader: the terminal's foreground group is ours.
    job = os.fork()
    if job == 0:
        os.setpgid(0, 0)  # what "cmd > log &" does in an interactive shell
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.execv(argv[0], argv)
    with open(pidfile, "w") as f:
        f.write(str(job))
    os.waitpid(job, 0)
    os._exit(0)
deadline = time.time() + 30
while time.time() < deadline:
    try:
        if not os.read(fd, 4096):
            break
    except OSError:
        break
os.waitpid(pid, 0)
`

// Defect 4: `wirecat listen -k :5000 > log &` in an interactive shell is
// not stopped by SIGTTIN: it receives, and its clients do not hang.
func TestBackgroundJobOnTerminalIsRecvOnly(t *testing.T) {
	need(t, "python3")
	dir := t.TempDir()
	logFile, pidFile := filepath.Join(dir, "log"), filepath.Join(dir, "pid")
	port := freePort(t)
	py := start(t, "python3", "-c", ptyJob, logFile, pidFile, bin, "listen", "-k", fmt.Sprintf("127.0.0.1:%d", port))
	var pid int
	waitFor(t, 10*time.Second, "the job's pid", func() bool {
		b, _ := os.ReadFile(pidFile)
		_, err := fmt.Sscan(string(b), &pid)
		return err == nil
	})
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		py.wait(10 * time.Second)
	})
	waitListen(t, port)
	for i := 1; i <= 2; i++ {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "reading %d\n", i)
		c.Close()
	}
	waitFor(t, 10*time.Second, "both readings in the log (a job stopped by SIGTTIN writes nothing)", func() bool {
		b, _ := os.ReadFile(logFile)
		return strings.Contains(string(b), "reading 1\n") && strings.Contains(string(b), "reading 2\n")
	})
	stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if f := strings.Fields(string(stat)); len(f) > 2 && (f[2] == "T" || f[2] == "t") {
		t.Fatalf("the job is stopped: %s", stat)
	}
}

// ptyStderr runs a command with its stderr on a pseudo-terminal (so the
// progress line is live) and copies what it writes there to a file. The
// command gets SIGTERM when python does, or after 20 s.
const ptyStderr = `
import os, pty, subprocess, sys, select, signal, time
out = open(sys.argv[1], "wb")
m, s = pty.openpty()
p = subprocess.Popen(sys.argv[2:], stderr=s, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
os.close(s)
signal.signal(signal.SIGTERM, lambda *a: p.terminate())
deadline = time.time() + 20
while True:
    if time.time() > deadline:
        p.terminate()
    r, _, _ = select.select([m], [], [], 0.1)
    if r:
        try:
            b = os.read(m, 65536)
        except OSError:
            break
        if not b:
            break
        out.write(b); out.flush()
    elif p.poll() is not None:
        break
sys.exit(p.wait())
`

// Defect 5: with -v, a log line never lands on the end of the live
// progress line ("18.8 MiB  4.1 MiB/swirecat: conn 1 ...").
func TestVerboseLogLinesClearTheProgressLine(t *testing.T) {
	need(t, "python3")
	errFile := filepath.Join(t.TempDir(), "stderr")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	py := start(t, "python3", "-c", ptyStderr, errFile, bin, "listen", "-k", "-v", addr)
	waitListen(t, port)
	// One client streams until the live line shows (after 1 s), then for
	// 1.2 s more while others come and go, each logging a line.
	streamer, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 256<<10)
	shown := func() bool { b, _ := os.ReadFile(errFile); return strings.Contains(string(b), "/s") }
	var end, next time.Time
	for deadline := time.Now().Add(15 * time.Second); end.IsZero() || time.Now().Before(end); {
		streamer.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := streamer.Write(chunk); err != nil {
			t.Fatal(err)
		}
		switch {
		case end.IsZero() && shown():
			end, next = time.Now().Add(1200*time.Millisecond), time.Now()
		case end.IsZero() && time.Now().After(deadline):
			t.Fatal("no progress line within 15 s of streaming")
		case !end.IsZero() && time.Now().After(next):
			if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
				c.Close()
			}
			next = next.Add(300 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
	}
	streamer.Close()
	time.Sleep(300 * time.Millisecond)
	py.cmd.Process.Signal(syscall.SIGTERM) // passed on to the listener
	py.wait(10 * time.Second)
	b, _ := os.ReadFile(errFile)
	got := string(b)
	for i := strings.Index(got, "wirecat:"); i >= 0; {
		if i > 0 && got[i-1] != '\n' && got[i-1] != '\r' {
			t.Fatalf("a log line starts after other text on its line: %q", got[max(0, i-40):min(len(got), i+40)])
		}
		j := strings.Index(got[i+1:], "wirecat:")
		if j < 0 {
			break
		}
		i += 1 + j
	}
}

// Defect 8: the README's build command makes a static binary.
func TestREADMEBuildIsStatic(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^(.*go build -o wirecat \./cmd/wirecat)`).FindStringSubmatch(string(readme))
	if m == nil {
		t.Fatal("README.md shows no `go build -o wirecat ./cmd/wirecat` line")
	}
	out := filepath.Join(t.TempDir(), "wirecat")
	cmdline := strings.Replace(m[1], "-o wirecat", "-o "+out, 1)
	build := exec.Command("sh", "-c", cmdline)
	build.Dir = "../.."
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%q builds a dynamically linked binary (it has an ELF interpreter)", cmdline)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("%q links %v", cmdline, libs)
	}
}

// Defect 9: wording and exit codes.
func TestWordingAndCodes(t *testing.T) {
	t.Run("1 reply", func(t *testing.T) {
		addr := serveOnce(t, func(c net.Conn) { io.Copy(io.Discard, c) })
		_, errOut, code := runWirecat(t, "", 20*time.Second, "send", addr, "x", "--replies", "1", "--wait", "100ms")
		if code != 3 || !strings.Contains(errOut, "expected 1 reply, got 0") {
			t.Fatalf("exit %d, stderr %q: want 3 and \"expected 1 reply, got 0\"", code, errOut)
		}
	})
	t.Run("enum errors", func(t *testing.T) {
		for _, args := range [][]string{
			{"send", "127.0.0.1:1", "x", "-o", "bogus"},
			{"connect", "127.0.0.1:1", "-i", "bogus"},
			{"replay", "x.jsonl", "--as", "bogus"},
		} {
			_, errOut, code := runWirecat(t, "", 20*time.Second, args...)
			if code != 2 || strings.Contains(errOut, `""`) || !strings.Contains(errOut, `"bogus"`) {
				t.Fatalf("%v: exit %d, stderr %q: want 2, the bad value named, no \"\" listed", args, code, errOut)
			}
		}
	})
	t.Run("unknown direction", func(t *testing.T) {
		_, errOut, code := runWirecat(t, "", 20*time.Second, "relay", "127.0.0.1:0", "127.0.0.1:1", "--delay", "sideways:10ms")
		if code != 2 || !strings.Contains(errOut, `unknown direction "sideways"`) || strings.Contains(errOut, "bad duration") {
			t.Fatalf("exit %d, stderr %q: want 2 and an unknown direction", code, errOut)
		}
	})
	t.Run("missing file exits 2", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "missing")
		for _, args := range [][]string{
			{"show", missing},
			{"replay", missing},
			{"simulate", missing},
			{"send", "127.0.0.1:1", "-f", missing},
			{"listen", "tls://127.0.0.1:0", "--cert", missing, "--key", missing},
		} {
			_, errOut, code := runWirecat(t, "", 20*time.Second, args...)
			if code != 2 || !strings.Contains(errOut, "missing") {
				t.Errorf("%v: exit %d, stderr %q: a missing input file is a usage error (2) naming it", args[0], code, errOut)
			}
		}
	})
}

// Defect 10: a message containing its own delimiter is refused, and UDP
// replies are visibly one a datagram.
func TestDelimiterInMessageRefused(t *testing.T) {
	got := make(chan string, 1)
	addr := serveOnce(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	_, errOut, code := runWirecat(t, "", 20*time.Second, "send", addr, "--frame", "delim:,", "a,b")
	if code != 2 || !strings.Contains(errOut, `"a,b" contains the delimiter ","`) {
		t.Fatalf("exit %d, stderr %q: want 2 and the delimiter named", code, errOut)
	}
	select {
	case b := <-got:
		t.Fatalf("nothing should be sent, the peer got %q", b)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestUDPRepliesOneADatagram(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 100)
		pc.SetDeadline(time.Now().Add(10 * time.Second))
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		for _, m := range []string{"ok temp 1", "ok temp 2", "ok temp 3\n"} {
			pc.WriteTo([]byte(m), from)
		}
	}()
	out, errOut, code := runWirecat(t, "", 20*time.Second, "send", "-u", pc.LocalAddr().String(), "temp?", "--replies", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != "ok temp 1\nok temp 2\nok temp 3\n" {
		t.Fatalf("want each datagram on its own line, got %q", out)
	}
	// -o raw still gives the exact bytes.
	go func() {
		buf := make([]byte, 100)
		_, from, err := pc.ReadFrom(buf)
		if err == nil {
			pc.WriteTo([]byte("a"), from)
			pc.WriteTo([]byte("b"), from)
		}
	}()
	out, errOut, code = runWirecat(t, "", 20*time.Second, "send", "-u", pc.LocalAddr().String(), "x", "--replies", "2", "-o", "raw")
	if code != 0 || out != "ab" {
		t.Fatalf("-o raw: exit %d, stdout %q (want \"ab\"), stderr %s", code, out, errOut)
	}
}

// connect -u and listen -u show datagrams the same way send does.
func TestUDPConnectListenOneADatagram(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(10 * time.Second))
	wc := start(t, "wirecat", "connect", "-u", pc.LocalAddr().String())
	io.WriteString(wc.stdin, "hi\n")
	buf := make([]byte, 100)
	_, from, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	pc.WriteTo([]byte("ok temp 1"), from)
	pc.WriteTo([]byte("ok temp 2"), from)
	wc.waitOutput("ok temp 1\nok temp 2\n", 10*time.Second)

	port := freeUDPPort(t)
	lc := start(t, "wirecat", "listen", "-u", fmt.Sprintf("127.0.0.1:%d", port))
	waitUDP(t, port)
	u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.Write([]byte("temp 1"))
	u.Write([]byte("temp 2\n"))
	lc.waitOutput("temp 1\ntemp 2\n", 10*time.Second)
	if got := lc.stdout.String(); got != "temp 1\ntemp 2\n" {
		t.Fatalf("listen -u printed %q", got)
	}
}

// Defect 1, the order: what the sink shows and what the script prints
// come out in the order they happened.
func TestSimulatePrintKeepsOrderWithSink(t *testing.T) {
	script := filepath.Join(t.TempDir(), "order.lua")
	os.WriteFile(script, []byte(`FRAME = "line"
local c = assert(net.connect(TARGET))
for i = 1, 3 do
  c:send("msg " .. i)
  sleep(0.05) -- the sink has it by now
  print("printed " .. i)
end
`), 0o644)
	out, errOut, code := runWirecat(t, "", 20*time.Second, "simulate", script)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := "msg 1\nprinted 1\nmsg 2\nprinted 2\nmsg 3\nprinted 3\n"; out != want {
		t.Fatalf("stdout %q, want %q", out, want)
	}
}

// Defect 5 in simulate: its status line is blanked before log.* lines and
// device errors.
func TestSimulateStatusLineClearedBeforeLogs(t *testing.T) {
	need(t, "python3")
	dir := t.TempDir()
	script, errFile := filepath.Join(dir, "fail.lua"), filepath.Join(dir, "stderr")
	os.WriteFile(script, []byte(`local c = assert(net.connect(TARGET))
sleep(3 + device.id / 10) -- the status line shows after 1 s: room for a loaded machine
log.info("about to fail")
error("boom " .. device.id)
`), 0o644)
	py := start(t, "python3", "-c", ptyStderr, errFile, bin, "simulate", script, "-n", "2")
	py.wait(20 * time.Second)
	b, _ := os.ReadFile(errFile)
	got := string(b)
	if !strings.Contains(got, "2 conns") {
		t.Fatalf("the status line never showed: %q", got)
	}
	for _, w := range []string{"device 1: about to fail", "wirecat: device 1: ", "device 2: about to fail"} {
		i := strings.Index(got, w)
		if i < 0 {
			t.Fatalf("stderr lacks %q: %q", w, got)
		}
		if i > 0 && got[i-1] != '\n' && !strings.HasSuffix(got[:i], "\r\033[K") {
			t.Fatalf("%q lands after the status line: %q", w, got)
		}
	}
}
