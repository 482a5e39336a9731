package main

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bad fault plans and control set-ups are usage errors with one clear line.
func TestFaultPlanBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--down", "5s@30s", "--down", "10s@32s"}, "overlaps"},
		{[]string{"--down", "5s"}, "DURATION@START"},
		{[]string{"--at", "10s --dealy 200ms"}, `unknown fault "--dealy"`},
		{[]string{"--at", "10s --delay up:100ms,down:20ms --drop 150%"}, "out of range"},
		{[]string{"--reset", "often"}, "--reset"},
		{[]string{"--slice", "9-3"}, "more than the largest"},
		{[]string{"--blackhole", "sideways"}, "want up, down, both or off"},
		{[]string{"--control", fmt.Sprintf(":%d", freePort(t))}, "needs a token"},
	} {
		args := append([]string{"relay", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "127.0.0.1:1"}, c.args...)
		_, stderr, code := runWirecat(t, "", 10*time.Second, args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "wirecat: ") > 2 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// A control API on a non-loopback bind takes a token: wirecat fault without
// it is refused with a hint, with it served; SIGTERM ends the relay within
// a second, control API included.
func TestControlToken(t *testing.T) {
	target := freePort(t)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", target))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port, cport := freePort(t), freePort(t)
	relay := start(t, "wirecat", "relay", fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", target),
		"--control", fmt.Sprintf(":%d", cport), "--control-token", "s3cret", "--down", "1h@1h")
	waitListen(t, cport)
	ctl := fmt.Sprintf("127.0.0.1:%d", cport)
	_, stderr, code := runWirecat(t, "", 10*time.Second, "fault", ctl)
	if code != 1 || !strings.Contains(stderr, "missing or wrong token") || !strings.Contains(stderr, "hint: give the relay's --control-token") {
		t.Fatalf("no token: exit %d: %s", code, stderr)
	}
	out, stderr, code := runWirecat(t, "", 10*time.Second, "fault", ctl, "--token", "s3cret", "--slice", "down:1-4", "--corrupt", "up:1%")
	if code != 0 || out != "--slice down:1-4 --corrupt up:0.01\n" {
		t.Fatalf("with the token: exit %d %q %s", code, out, stderr)
	}
	out, _, code = runWirecat(t, "", 10*time.Second, "fault", ctl, "--token", "s3cret", "--conns")
	if code != 0 || out != "no open connections\n" {
		t.Fatalf("--conns: exit %d %q", code, out)
	}
	_, stderr, code = runWirecat(t, "", 10*time.Second, "fault", ctl, "--token", "s3cret", "--kill", "7")
	if code != 1 || !strings.Contains(stderr, "no connection 7 is open") {
		t.Fatalf("--kill 7: exit %d %s", code, stderr)
	}
	relay.cmd.Process.Signal(syscall.SIGTERM)
	t0 := time.Now()
	relay.wait(5 * time.Second)
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("SIGTERM ended the relay after %v", d)
	}
	_, stderr, code = runWirecat(t, "", 10*time.Second, "fault", ctl)
	if code != 1 || !strings.Contains(stderr, "is the relay running with --control") {
		t.Fatalf("no relay: exit %d %s", code, stderr)
	}
}
