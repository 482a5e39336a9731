package main

// The end-to-end tests run the built binary against real peers over
// loopback. Every process they start is killed when the test ends, and
// every wait has a deadline.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var bin string // the wirecat binary under test

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wirecat-e2e")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "wirecat")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building wirecat:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// need skips a test when a peer program is missing, but fails it in CI,
// where every peer must be installed.
func need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI but not installed", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freeUDPPort returns a loopback UDP port nobody uses right now.
func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

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

// waitFor polls until cond holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
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

// waitListen waits until a TCP port is in LISTEN state without connecting
// to it (a connection would be the one peer of a listen without -k).
func waitListen(t testing.TB, port int) {
	t.Helper()
	hex := fmt.Sprintf(":%04X ", port)
	waitFor(t, 10*time.Second, fmt.Sprintf("port %d to listen", port), func() bool {
		for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
			b, _ := os.ReadFile(f)
			for _, line := range strings.Split(string(b), "\n") {
				fields := strings.Fields(line)
				if len(fields) > 3 && strings.HasSuffix(fields[1]+" ", hex) && fields[3] == "0A" {
					return true
				}
			}
		}
		return false
	})
}

// waitUDP waits until a UDP port is bound.
func waitUDP(t testing.TB, port int) {
	t.Helper()
	hex := fmt.Sprintf(":%04X ", port)
	waitFor(t, 10*time.Second, fmt.Sprintf("udp port %d to be bound", port), func() bool {
		for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
			b, _ := os.ReadFile(f)
			for _, line := range strings.Split(string(b), "\n") {
				fields := strings.Fields(line)
				if len(fields) > 1 && strings.HasSuffix(fields[1]+" ", hex) {
					return true
				}
			}
		}
		return false
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
