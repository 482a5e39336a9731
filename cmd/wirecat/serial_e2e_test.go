package main

// Issue 10 end to end: serial ports (a socat pty pair standing in for a
// cable with a far end) and ptys wirecat creates, driven by pyserial (the
// host software), socat, mbpoll and picocom.

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pyserial is Debian's python3-serial, which imports under debPython.
const pyserial = debPython

func needPyserial(t *testing.T) {
	t.Helper()
	needPy(t, "serial")
}

// cable starts `socat pty,raw,echo=0 pty,raw,echo=0`: two ttys joined like
// the two ends of a cable, at dir/a and dir/b.
func cable(t *testing.T, dir string) (a, b string, p *proc) {
	t.Helper()
	need(t, "socat")
	a, b = filepath.Join(dir, "a"), filepath.Join(dir, "b")
	p = start(t, "socat", "pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	waitFor(t, 5*time.Second, "socat's ptys", func() bool {
		_, ea := os.Stat(a)
		_, eb := os.Stat(b)
		return ea == nil && eb == nil
	})
	return a, b, p
}

// waitLink waits for a pty symlink wirecat makes.
func waitLink(t *testing.T, path string) {
	t.Helper()
	waitFor(t, 5*time.Second, "the pty at "+path, func() bool {
		l, err := os.Readlink(path)
		return err == nil && strings.HasPrefix(l, "/dev/pts/")
	})
}

// py runs a pyserial script with args, bounded by 10 s.
func py(t *testing.T, script string, args ...string) string {
	t.Helper()
	p := startIn(t, strings.NewReader(""), pyserial, append([]string{"-c", script}, args...)...)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("pyserial script exited %d: %s", code, p.stderr)
	}
	return p.stdout.String()
}

// allBytes is every byte value twice: what a terminal layer would mangle.
var allBytes = func() []byte {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// TestSerialCable: `connect serial:` on one end of the cable, pyserial on
// the other: every byte value passes unchanged both ways, and when the far
// end vanishes (socat killed: the device is gone) wirecat says so in one
// line, exits 1, and what arrived before is on stdout and in the recording.
func TestSerialCable(t *testing.T) {
	needPyserial(t)
	dir := t.TempDir()
	a, b, sp := cable(t, dir)
	rec := filepath.Join(dir, "s.jsonl")
	// pyserial flushes its input when it opens the port: it opens first.
	far := start(t, pyserial, "-c", `
import serial, sys
s = serial.Serial(sys.argv[1], 9600, timeout=5)
print("open", flush=True)
got = s.read(512)
assert got == bytes(range(256)) * 2, got
s.write(bytes(range(255, -1, -1)) * 2)
s.flush()
print("ok")
`, b)
	far.waitOutput("open", 5*time.Second)
	wc := startIn(t, bytes.NewReader(allBytes), "wirecat", "connect", "serial:"+a+"?baud=9600", "--record", rec)
	if code := far.wait(10 * time.Second); code != 0 || far.stdout.String() != "open\nok\n" {
		t.Fatalf("pyserial: exit %d, %q %q", code, far.stdout, far.stderr)
	}
	waitFor(t, 5*time.Second, "512 bytes on stdout", func() bool { return len(wc.stdout.String()) >= 512 })
	sp.cmd.Process.Signal(syscall.SIGTERM)
	if code := wc.wait(5 * time.Second); code != 1 {
		t.Fatalf("exit %d after the device vanished, want 1; stderr %q", code, wc.stderr)
	}
	want := bytes.Repeat(func() []byte {
		r := make([]byte, 256)
		for i := range r {
			r[i] = byte(255 - i)
		}
		return r
	}(), 2)
	if !bytes.Equal([]byte(wc.stdout.String()), want) {
		t.Errorf("stdout: %d bytes, not the 512 sent", len(wc.stdout.String()))
	}
	errs := strings.TrimSpace(wc.stderr.String())
	if strings.Count(errs, "\n") != 0 || !strings.Contains(errs, "the device went away") || !strings.HasPrefix(errs, "wirecat: ") {
		t.Errorf("want one line saying the device went away, got %q", errs)
	}
	out, _, code := runWirecat(t, "", 10*time.Second, "show", rec, "-o", "json")
	if code != 0 || !strings.Contains(out, `"transport":"serial"`) || !strings.Contains(out, `"dir":"in","from":"server","len":512`) || !strings.Contains(out, "the device went away") {
		t.Errorf("recording: exit %d\n%s", code, out)
	}
}

// TestSerialOpenErrors: a missing port, a bad option, a file that is no
// tty, and a port another program holds (named).
func TestSerialOpenErrors(t *testing.T) {
	needPyserial(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		addr, want string
		code       int
	}{
		{"serial:" + dir + "/ttyNone", "no such file or directory (no such device; `wirecat ports` lists the ports present)", 1},
		{"serial:/dev/null", "not a serial port", 1},
		{"serial:/dev/ttyS0?parity=mark", "mark and space are not supported", 2},
		{"serial:/dev/ttyS0?speed=9600", `unknown option "speed"`, 2},
	} {
		_, stderr, code := runWirecat(t, "", 10*time.Second, "connect", tc.addr)
		if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("connect %s: exit %d, %q; want %d and %q", tc.addr, code, stderr, tc.code, tc.want)
		}
	}
	_, stderr, code := runWirecat(t, "", 10*time.Second, "connect", "serial:/dev/null", "--baud", "-5")
	if code != 2 || !strings.Contains(stderr, "--baud") {
		t.Errorf("--baud -5: exit %d, %q", code, stderr)
	}

	a, _, _ := cable(t, dir)
	holder := start(t, pyserial, "-c", `
import serial, sys, time
s = serial.Serial(sys.argv[1], exclusive=True)
print("open", flush=True)
time.sleep(10)
`, a)
	holder.waitOutput("open", 5*time.Second)
	_, stderr, code = runWirecat(t, "", 10*time.Second, "connect", "serial:"+a)
	want := "device or resource busy (in use by pid " + strconv.Itoa(holder.cmd.Process.Pid) + " (python3))"
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("busy port: exit %d, %q; want %q", code, stderr, want)
	}
}

// TestPTYListen: `listen pty:PATH` serves stdin/stdout behind a tty that
// pyserial opens by the symlink; the opener's close ends it (exit 0) and
// the symlink is gone.
func TestPTYListen(t *testing.T) {
	needPyserial(t)
	tty := filepath.Join(t.TempDir(), "ttyV0")
	wc := startIn(t, strings.NewReader("pong\r\n"), "wirecat", "listen", "pty:"+tty)
	waitLink(t, tty)
	wc.waitStderr("wirecat: pty /dev/pts/", 5*time.Second)
	got := py(t, `
import serial, sys
s = serial.Serial(sys.argv[1], 115200, timeout=5)
s.write(b"ping\r\n\x00\xff")
print(repr(s.read(6)))
s.close()
`, tty)
	if got != "b'pong\\r\\n'\n" {
		t.Errorf("pyserial read %q", got)
	}
	if code := wc.wait(5 * time.Second); code != 0 {
		t.Fatalf("exit %d after the opener closed, stderr %q", code, wc.stderr)
	}
	if wc.stdout.String() != "ping\r\n\x00\xff" {
		t.Errorf("stdout %q", wc.stdout)
	}
	if _, err := os.Lstat(tty); err == nil {
		t.Error("symlink left behind")
	}
}

// TestPTYSignal: SIGTERM ends a pty listener nobody opened, and one in a
// session, within a second, exit 143, symlink removed.
func TestPTYSignal(t *testing.T) {
	needPyserial(t)
	dir := t.TempDir()
	for _, opened := range []bool{false, true} {
		tty := filepath.Join(dir, "ttyS")
		wc := start(t, "wirecat", "listen", "-k", "pty:"+tty)
		waitLink(t, tty)
		if opened {
			h := start(t, pyserial, "-c", "import serial,sys,time\ns=serial.Serial(sys.argv[1])\nprint('open',flush=True)\ntime.sleep(10)", tty)
			h.waitOutput("open", 5*time.Second)
			time.Sleep(100 * time.Millisecond) // the listener sees its opener
		}
		took := time.Now()
		wc.cmd.Process.Signal(syscall.SIGTERM)
		code := wc.wait(5 * time.Second)
		// 143 is SPEC's; 0 until issue 9's signal exit codes land.
		if d := time.Since(took); d > time.Second || code != 143 && code != 0 {
			t.Errorf("opened=%v: exit %d after %v, want 143 within 1s", opened, code, d)
		}
		if _, err := os.Lstat(tty); err == nil {
			t.Errorf("opened=%v: symlink left behind", opened)
		}
	}
}

// TestATModem: scripts/at-modem.lua behind a pty, driven by send --until.
func TestATModem(t *testing.T) {
	tty := filepath.Join(t.TempDir(), "ttyModem")
	sim := start(t, "wirecat", "simulate", "../../scripts/at-modem.lua", "--listen", "pty:"+tty)
	waitLink(t, tty)
	out, stderr, code := runWirecat(t, "", 10*time.Second, "send", "serial:"+tty, "AT+CSQ", "--frame", "crlf", "--until", "OK")
	if code != 0 || !strings.HasPrefix(out, "+CSQ: ") || !strings.HasSuffix(out, ",99\nOK\n") {
		t.Errorf("AT+CSQ: exit %d, %q, %q", code, out, stderr)
	}
	out, _, code = runWirecat(t, "", 10*time.Second, "send", "serial:"+tty, "ATI", "AT", "ATD123", "--frame", "crlf", "--replies", "4")
	if code != 0 || out != "wirecat AT modem, device 1\nOK\nOK\nERROR\n" {
		t.Errorf("ATI/AT/ATD: exit %d, %q", code, out)
	}
	sim.cmd.Process.Signal(syscall.SIGINT)
	if code := sim.wait(5 * time.Second); code != 130 && code != 0 { // 0 until issue 9's signal exit codes land
		t.Errorf("simulate exit %d after SIGINT", code)
	}
	if _, err := os.Lstat(tty); err == nil {
		t.Error("symlink left behind")
	}
}

// TestRelayPTYToTCP: `relay pty:PATH tcp://…` makes a TCP service a local
// tty (pyserial talks to a wirecat echo server through it), and `relay
// tcp://… serial:…` serves a serial port on TCP (ser2net's job), with
// the bytes exact both ways.
func TestRelayPTYToTCP(t *testing.T) {
	needPyserial(t)
	dir := t.TempDir()
	port := freePort(t)
	echo := start(t, "wirecat", "listen", "-k", "127.0.0.1:"+strconv.Itoa(port), "--exec", "cat")
	waitListen(t, port)
	tty := filepath.Join(dir, "ttyR")
	relay := start(t, "wirecat", "relay", "pty:"+tty, "tcp://127.0.0.1:"+strconv.Itoa(port))
	waitLink(t, tty)
	got := py(t, `
import serial, sys
s = serial.Serial(sys.argv[1], timeout=5)
s.write(bytes(range(256)))
print(s.read(256) == bytes(range(256)))
`, tty)
	if got != "True\n" {
		t.Errorf("through relay pty→tcp echo: %q", got)
	}
	relay.cmd.Process.Signal(syscall.SIGTERM)
	relay.wait(5 * time.Second)
	echo.cmd.Process.Kill()

	a, b, _ := cable(t, dir)
	port2 := freePort(t)
	ser2net := start(t, "wirecat", "relay", "127.0.0.1:"+strconv.Itoa(port2), "serial:"+a)
	waitListen(t, port2)
	far := start(t, pyserial, "-c", `
import serial, sys
s = serial.Serial(sys.argv[1], timeout=5)
print("open", flush=True)
got = s.read(5)
s.write(got.upper())
print(got.decode(), flush=True)
`, b)
	far.waitOutput("open", 5*time.Second)
	out, stderr, code := runWirecat(t, "hello", 10*time.Second, "send", "127.0.0.1:"+strconv.Itoa(port2), "--until", "HELLO", "--wait", "5s", "--frame", "raw")
	if code != 0 || out != "HELLO" {
		t.Errorf("tcp→serial: exit %d, %q %q", code, out, stderr)
	}
	far.waitOutput("hello", 5*time.Second)
	ser2net.cmd.Process.Signal(syscall.SIGTERM)
	ser2net.wait(5 * time.Second)
}

// TestModbusRTU: mbpoll, a real Modbus RTU master, against
// scripts/modbus-rtu.lua behind a pty: reads, a write read back, and the
// exceptions for a bad address, a bad function and another unit's silence.
func TestModbusRTU(t *testing.T) {
	need(t, "mbpoll")
	tty := filepath.Join(t.TempDir(), "ttyRTU")
	sim := start(t, "wirecat", "simulate", "../../scripts/modbus-rtu.lua", "--listen", "pty:"+tty)
	waitLink(t, tty)
	mbpoll := func(args ...string) (string, int) {
		t.Helper()
		p := startIn(t, strings.NewReader(""), "mbpoll", append([]string{"-m", "rtu", "-b", "9600", "-P", "none", "-1", "-o", "0.5"}, append(args, tty)...)...)
		code := p.wait(10 * time.Second)
		return p.stdout.String() + p.stderr.String(), code
	}
	out, code := mbpoll("-a", "1", "-t", "4", "-r", "2", "-c", "3")
	if code != 0 || !strings.Contains(out, "[2]: \t1\n[3]: \t2\n[4]: \t3\n") {
		t.Errorf("read 2-4: exit %d\n%s", code, out)
	}
	if out, code = mbpoll("-a", "1", "-t", "4", "-r", "10", "-c", "1"); code != 0 || !strings.Contains(out, "[10]: \t9\n") {
		t.Errorf("read 10: exit %d\n%s", code, out)
	}
	// mbpoll wants the value after the device.
	p := startIn(t, strings.NewReader(""), "mbpoll", "-m", "rtu", "-b", "9600", "-P", "none", "-1", "-a", "1", "-t", "4", "-r", "10", tty, "4321")
	if code := p.wait(10 * time.Second); code != 0 || !strings.Contains(p.stdout.String(), "Written 1 references") {
		t.Errorf("write 10: exit %d\n%s%s", code, p.stdout, p.stderr)
	}
	if out, code = mbpoll("-a", "1", "-t", "4", "-r", "10", "-c", "1"); code != 0 || !strings.Contains(out, "[10]: \t4321\n") {
		t.Errorf("read 10 after the write: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-a", "1", "-t", "4", "-r", "99", "-c", "5"}, "Illegal data address"},
		{[]string{"-a", "1", "-t", "0", "-r", "1", "-c", "2"}, "Illegal function"},
		{[]string{"-a", "2", "-t", "4", "-r", "1", "-c", "1"}, "timed out"},
	} {
		if out, _ := mbpoll(tc.args...); !strings.Contains(out, tc.want) {
			t.Errorf("mbpoll %v: want %q\n%s", tc.args, tc.want, out)
		}
	}
	sim.cmd.Process.Signal(syscall.SIGINT)
	sim.wait(5 * time.Second)
}

// TestSerialKeepWaits: `listen -k serial:…` whose device vanishes says so,
// waits for it to come back (socat restarted on the same names: a board
// re-enumerated) and serves it again.
func TestSerialKeepWaits(t *testing.T) {
	needPyserial(t)
	dir := t.TempDir()
	a, b, sp := cable(t, dir)
	wc := start(t, "wirecat", "listen", "-k", "serial:"+a)
	far := func(msg string) {
		py(t, `
import serial, sys, time
s = serial.Serial(sys.argv[1], timeout=5)
time.sleep(0.2)
s.write(sys.argv[2].encode())
s.flush()
time.sleep(0.2)
`, b, msg)
	}
	far("before\n")
	wc.waitOutput("before\n", 5*time.Second)
	sp.cmd.Process.Signal(syscall.SIGTERM)
	sp.wait(5 * time.Second)
	wc.waitStderr("the device went away", 5*time.Second)
	wc.waitStderr("waiting for serial://"+a+" to come back", 5*time.Second)
	a2, b2, _ := cable(t, dir)
	if a2 != a || b2 != b {
		t.Fatal("cable names changed")
	}
	wc.waitStderr("is back", 5*time.Second)
	far("after\n")
	wc.waitOutput("before\nafter\n", 5*time.Second)
	select {
	case <-wc.done:
		t.Fatalf("listen -k exited: %s", wc.stderr)
	default:
	}
}

// TestPicocom: a human's terminal (picocom, driven through tmux) on a
// `listen pty:` tty: what wirecat's stdin sends shows on the screen, what
// is typed arrives on wirecat's stdout, and quitting picocom ends listen.
func TestPicocom(t *testing.T) {
	need(t, "picocom", "tmux")
	dir := t.TempDir()
	tty := dir + "/ttyP"
	wc := start(t, "wirecat", "listen", "pty:"+tty)
	waitLink(t, tty)
	sock := "wirecat-test-" + strconv.Itoa(os.Getpid())
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	tmux("new-session", "-d", "-s", "p", "-x", "100", "-y", "20", "picocom -q -b 115200 "+tty)
	t.Cleanup(func() { exec.Command("tmux", "-L", sock, "kill-server").Run() })
	time.Sleep(300 * time.Millisecond) // picocom opens the tty
	io.WriteString(wc.stdin, "board> hello from the board\r\n")
	waitFor(t, 10*time.Second, "the board's line on picocom's screen", func() bool {
		return strings.Contains(tmux("capture-pane", "-p", "-t", "p"), "board> hello from the board")
	})
	tmux("send-keys", "-t", "p", "led on", "Enter")
	wc.waitOutput("led on\r", 10*time.Second)
	tmux("send-keys", "-t", "p", "C-a", "C-x") // picocom's quit
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("listen exit %d after picocom quit: %s", code, wc.stderr)
	}
}

// TestReplayMockTTY: a session recorded against the AT modem over its pty
// is replayed as the server behind a new pty: a recorded board as a mock
// tty, answering as the board did.
func TestReplayMockTTY(t *testing.T) {
	dir := t.TempDir()
	tty, mock, rec := filepath.Join(dir, "ttyModem"), filepath.Join(dir, "ttyMock"), filepath.Join(dir, "modem.jsonl")
	sim := start(t, "wirecat", "simulate", "../../scripts/at-modem.lua", "--listen", "pty:"+tty)
	waitLink(t, tty)
	live, _, code := runWirecat(t, "", 10*time.Second, "send", "serial:"+tty, "ATI", "--frame", "crlf", "--until", "OK", "--record", rec)
	if code != 0 || live != "wirecat AT modem, device 1\nOK\n" {
		t.Fatalf("live: exit %d, %q", code, live)
	}
	sim.cmd.Process.Signal(syscall.SIGINT)
	sim.wait(5 * time.Second)
	rp := start(t, "wirecat", "replay", rec, "--as", "server", "--listen", "pty:"+mock, "--once")
	waitLink(t, mock)
	out, stderr, code := runWirecat(t, "", 10*time.Second, "send", "serial:"+mock, "ATI", "--frame", "crlf", "--until", "OK")
	if code != 0 || out != live {
		t.Errorf("mock: exit %d, %q %q; want %q", code, out, stderr, live)
	}
	rp.wait(10 * time.Second)
}

// TestLuaSerialConnect: a device script opens a serial port with
// net.connect("serial:…") (here the AT modem's pty) and talks AT.
func TestLuaSerialConnect(t *testing.T) {
	dir := t.TempDir()
	tty := filepath.Join(dir, "ttyModem")
	sim := start(t, "wirecat", "simulate", "../../scripts/at-modem.lua", "--listen", "pty:"+tty)
	waitLink(t, tty)
	host := filepath.Join(dir, "host.lua")
	os.WriteFile(host, []byte(`
local c = assert(net.connect("serial:" .. args.port .. "?baud=9600"))
c:send("AT+CSQ\r")
local answer = c:recv_until("OK\r\n", 5)
print((answer:gsub("\r\n", "|")))
c:close()
`), 0o644)
	out, stderr, code := runWirecat(t, "", 10*time.Second, "simulate", host, "--arg", "port="+tty)
	if code != 0 || !strings.HasPrefix(out, "+CSQ: ") || !strings.HasSuffix(out, ",99|OK|\n") {
		t.Errorf("exit %d, %q, %q", code, out, stderr)
	}
	sim.cmd.Process.Signal(syscall.SIGINT)
	sim.wait(5 * time.Second)
}

// TestSerialKeepWaitsToAppear: `listen -k serial:…` started before the
// board is plugged in waits for it; without -k it is an error at once.
func TestSerialKeepWaitsToAppear(t *testing.T) {
	needPyserial(t)
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	_, stderr, code := runWirecat(t, "", 10*time.Second, "listen", "serial:"+a)
	if code != 1 || !strings.Contains(stderr, "no such file or directory") {
		t.Errorf("without -k: exit %d, %q", code, stderr)
	}
	wc := start(t, "wirecat", "listen", "-k", "serial:"+a)
	wc.waitStderr("waiting for serial://"+a+" to appear (no such file or directory; no such device", 5*time.Second)
	_, b, _ := cable(t, dir)
	wc.waitStderr("serial://"+a+" is there", 5*time.Second)
	py(t, "import serial, sys, time\ns = serial.Serial(sys.argv[1])\ntime.sleep(0.2)\ns.write(b'plugged in\\n')\ns.flush()\ntime.sleep(0.2)", b)
	wc.waitOutput("plugged in\n", 5*time.Second)
}

// TestRelayPTYTargetRefused: a relay from a pty whose target refuses says
// so once per opener, not once per poll while the opener stays.
func TestRelayPTYTargetRefused(t *testing.T) {
	needPyserial(t)
	tty := filepath.Join(t.TempDir(), "ttyR")
	relay := start(t, "wirecat", "relay", "pty:"+tty, "tcp://127.0.0.1:"+strconv.Itoa(freePort(t)))
	waitLink(t, tty)
	py(t, "import serial, sys, time\ns = serial.Serial(sys.argv[1])\ns.write(b'x')\ntime.sleep(0.5)", tty)
	relay.waitStderr("connection refused", 5*time.Second)
	time.Sleep(200 * time.Millisecond)
	if n := strings.Count(relay.stderr.String(), "connection refused"); n != 1 {
		t.Errorf("%d refusals reported for one opener:\n%.500s", n, relay.stderr)
	}
}
