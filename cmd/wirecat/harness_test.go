package main

// The end-to-end tests run the built binary against real peers over
// loopback. Every process they start is killed when the test ends, and
// every wait has a deadline.

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

var bin string // the wirecat binary under test

func TestMain(m *testing.M) {
	cleanup, err := e2e.Build(".", raceEnabled)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = e2e.Bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// The helpers shared with the chaos suite live in internal/e2e.
func need(t testing.TB, tools ...string) { t.Helper(); e2e.Need(t, tools...) }
func freePort(t testing.TB) int          { t.Helper(); return e2e.FreePort(t) }
func freeUDPPort(t testing.TB) int       { t.Helper(); return e2e.FreeUDPPort(t) }
func waitListen(t testing.TB, port int)  { t.Helper(); e2e.WaitListen(t, port) }
func waitUDP(t testing.TB, port int)     { t.Helper(); e2e.WaitUDP(t, port) }

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	e2e.WaitFor(t, timeout, what, cond)
}

// have reports whether tool is installed, for a step that a local run may
// leave out; CI installs every peer, so there its absence fails the test
// (as need does) instead of passing a check that never ran.
func have(t testing.TB, tool string) bool {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI but not installed", tool)
		}
		return false
	}
	return true
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer = e2e.Buffer

// proc is a program running in the background for one test.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	stdin  io.WriteCloser
	done   chan struct{}
	err    error
}

// start runs name with args; stdin is a pipe the test may write to, or
// /dev/null when stdin is nil... see startIn.
func start(t testing.TB, name string, args ...string) *proc {
	return startIn(t, nil, name, args...)
}

// startIn runs name with stdin (a reader, or nil for a pipe the test holds).
func startIn(t testing.TB, stdin io.Reader, name string, args ...string) *proc {
	t.Helper()
	if name == "wirecat" {
		name = bin
	}
	p := &proc{t: t, cmd: exec.Command(name, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if stdin != nil {
		p.cmd.Stdin = stdin
	} else {
		w, err := p.cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.stdin = w
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), args, p.stdout, p.stderr)
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("%s did not exit within %v\nstdout: %q\nstderr: %q", p.cmd.Path, timeout, p.stdout, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

// waitOutput waits until the process printed want on stdout.
func (p *proc) waitOutput(want string, timeout time.Duration) {
	p.t.Helper()
	waitFor(p.t, timeout, fmt.Sprintf("stdout to contain %q (have %q)", want, p.stdout), func() bool {
		return strings.Contains(p.stdout.String(), want)
	})
}

// waitStderr waits until the process printed want on stderr.
func (p *proc) waitStderr(want string, timeout time.Duration) {
	p.t.Helper()
	waitFor(p.t, timeout, fmt.Sprintf("stderr to contain %q", want), func() bool {
		return strings.Contains(p.stderr.String(), want)
	})
}

// waitTCP waits until something accepts connections on addr.
func waitTCP(t testing.TB, addr string) {
	t.Helper()
	waitFor(t, 10*time.Second, "a listener on "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// runWirecat runs wirecat to completion with stdin and returns stdout,
// stderr and the exit code.
func runWirecat(t testing.TB, stdin string, timeout time.Duration, args ...string) (string, string, int) {
	t.Helper()
	p := startIn(t, strings.NewReader(stdin), "wirecat", args...)
	code := p.wait(timeout)
	return p.stdout.String(), p.stderr.String(), code
}
