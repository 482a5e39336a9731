package main

// Serial ports that come and go (a board plugged in late, a USB
// re-enumeration): connect --retry waits for the port to appear or to be
// freed, connect --reconnect reopens it when it vanishes mid-session, and
// a device's net.connect("serial:…") honours simulate --retry. The cable
// is a socat pty pair whose one end disappears and comes back.

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readTTY starts a pyserial reader on path that prints what arrives until
// want has, or 10 s pass.
func readTTY(t *testing.T, path, want string) *proc {
	t.Helper()
	return start(t, pyserial, "-c", `
import serial, sys, time
s = serial.Serial(sys.argv[1], timeout=0.2)
got, end = b"", time.time() + 10
while sys.argv[2].encode() not in got and time.time() < end:
    got += s.read(256)
sys.stdout.write(got.decode())
`, path, want)
}

func TestSerialRetryWaitsForThePort(t *testing.T) {
	needPyserial(t)
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	// not there yet: --retry waits (without it, the error at once)
	_, stderr, code := runWirecat(t, "hi\n", 10*time.Second, "connect", "serial:"+a)
	if code != 1 || !strings.Contains(stderr, "no such file or directory") {
		t.Fatalf("without --retry: exit %d, %q", code, stderr)
	}
	wc := start(t, "wirecat", "connect", "serial:"+a, "--retry", "forever", "-v")
	wc.waitStderr("attempt 2 failed: open serial://"+a+": no such file or directory", 10*time.Second)
	_, b, _ := cable(t, dir)
	wc.waitStderr("succeeded", 10*time.Second)
	r := readTTY(t, b, "plugged in late\n")
	time.Sleep(300 * time.Millisecond) // the reader has the port open
	wc.stdin.Write([]byte("plugged in late\n"))
	if r.wait(15 * time.Second); r.stdout.String() != "plugged in late\n" {
		t.Fatalf("the far end read %q", r.stdout)
	}
	wc.cmd.Process.Signal(syscall.SIGTERM) // a serial port never says it is done
	wc.wait(10 * time.Second)

	// busy (opened by another wirecat): --retry waits until it is free
	held := start(t, "wirecat", "connect", "-v", "serial:"+a)
	held.waitStderr("connected to serial://"+a, 10*time.Second)
	wc2 := start(t, "wirecat", "connect", "serial:"+a, "--retry", "forever", "-v")
	wc2.waitStderr("device or resource busy (in use by pid", 10*time.Second)
	held.cmd.Process.Signal(syscall.SIGTERM)
	held.wait(5 * time.Second)
	wc2.waitStderr("succeeded", 10*time.Second)
}

// connect --reconnect: the port vanishes (socat stopped) and comes back
// under the same name; what stdin sends after goes to the new port.
func TestSerialReconnectAcrossReplug(t *testing.T) {
	needPyserial(t)
	dir := t.TempDir()
	_, b, sp := cable(t, dir)
	a := filepath.Join(dir, "a")
	wc := start(t, "wirecat", "connect", "--reconnect", "-v", "serial:"+a)
	wc.waitStderr("connected to serial://"+a, 10*time.Second)
	r := readTTY(t, b, "before\n")
	time.Sleep(300 * time.Millisecond)
	wc.stdin.Write([]byte("before\n"))
	if r.wait(15 * time.Second); r.stdout.String() != "before\n" {
		t.Fatalf("before the replug the far end read %q", r.stdout)
	}
	sp.cmd.Process.Signal(syscall.SIGTERM) // unplugged
	sp.wait(5 * time.Second)
	wc.waitStderr("the device went away", 10*time.Second)
	wc.waitStderr("no such file or directory", 10*time.Second)
	_, b2, _ := cable(t, dir) // plugged in again, same names
	if b2 != b {
		t.Fatal("cable names changed")
	}
	waitFor(t, 10*time.Second, "the reconnect", func() bool {
		return strings.Count(wc.stderr.String(), "connected to serial://"+a) >= 2
	})
	r = readTTY(t, b, "after\n")
	time.Sleep(300 * time.Millisecond)
	wc.stdin.Write([]byte("after\n"))
	if r.wait(15 * time.Second); r.stdout.String() != "after\n" {
		t.Fatalf("after the replug the far end read %q", r.stdout)
	}
	wc.stdin.Close()
}

// A device's net.connect("serial:…") waits for the port with simulate --retry.
func TestLuaSerialRetry(t *testing.T) {
	needPyserial(t)
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	script := writeScript(t, `local c = assert(net.connect("serial:" .. args.port))
c:send("from lua\n")
sleep(0.5)
c:close()
print("sent")`)
	sim := start(t, "wirecat", "simulate", script, "--arg", "port="+a, "--retry", "forever", "-v", "--duration", "20s")
	sim.waitStderr("attempt 2 failed", 10*time.Second)
	_, b, _ := cable(t, dir)
	r := readTTY(t, b, "from lua\n")
	if code := sim.wait(20 * time.Second); code != 0 || sim.stdout.String() != "sent\n" {
		t.Fatalf("simulate: exit %d, %q, %q", code, sim.stdout, sim.stderr)
	}
	if r.wait(15 * time.Second); r.stdout.String() != "from lua\n" {
		t.Fatalf("the far end read %q", r.stdout)
	}
}
