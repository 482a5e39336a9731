// Package e2e runs the built wirecat binary against real peers over
// loopback, for the end-to-end and chaos tests. Every process it starts is
// killed when its test ends, and every wait has a deadline.
package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bin is the wirecat binary under test, set by Build.
var Bin string

// Build compiles the wirecat command at pkg (a path or import path) into a
// temporary directory and sets Bin; the returned func removes it.
func Build(pkg string, race bool) (cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "wirecat-e2e")
	if err != nil {
		return nil, err
	}
	Bin = filepath.Join(dir, "wirecat")
	args := []string{"build", "-o", Bin}
	if race {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, pkg)...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("building wirecat: %w", err)
	}
	return func() { os.RemoveAll(dir) }, nil
}

// sourcesNoted makes the first Start note the sources (a TestMain is not
// yet watched by go test's cache when it builds the binary).
var sourcesNoted sync.Once

// noteSources stats every Go and Lua file of the module, so that go test's
// cache, which records the files a test touches, reruns the tests of a
// binary built in a subprocess when any of its sources changed (the test
// package itself imports none of them).
func noteSources() {
	dir, err := os.Getwd()
	if err != nil {
		return
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return
		}
		dir = parent
	}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return nil
		case d.IsDir() && (d.Name() == ".git" || d.Name() == "dist"):
			return filepath.SkipDir
		case !d.IsDir() && (strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".lua") || d.Name() == "go.mod"):
			os.Stat(path)
		}
		return nil
	})
}

// Need skips a test when a peer program is missing, but fails it in CI,
// where every peer must be installed.
func Need(t testing.TB, tools ...string) {
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

// NeedPath is Need for one tool, returning where it is installed.
func NeedPath(t testing.TB, tool string) string {
	t.Helper()
	Need(t, tool)
	path, _ := exec.LookPath(tool)
	return path
}

// FreePort returns a loopback TCP port nobody listens on right now.
func FreePort(t testing.TB) int { t.Helper(); return pickPort(t, "tcp") }

// FreeUDPPort returns a loopback UDP port nobody uses right now.
func FreeUDPPort(t testing.TB) int { t.Helper(); return pickPort(t, "udp") }

// Ports handed out by this process, so two calls never return the same one.
var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// pickPort returns a port below the kernel's ephemeral range that can be
// bound on every address (examples listen on ":PORT"). A port the kernel
// picks for ":0" comes from that range, and between the check and the
// test's own listen the kernel may hand it to any outgoing connection: with
// a fleet test holding thousands of them beside, that failed runs ("address
// already in use"). Below the range only another test choosing the same
// port at random can collide.
func pickPort(t testing.TB, network string) int {
	t.Helper()
	lo, hi := 10000, ephemeralLow()
	portsMu.Lock()
	defer portsMu.Unlock()
	for i := 0; i < 200 && hi-lo >= 1000; i++ {
		port := lo + rand.IntN(hi-lo)
		if !portsGiven[port] && bindable(network, port) {
			portsGiven[port] = true
			return port
		}
	}
	// No room below the range: let the kernel choose.
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func bindable(network string, port int) bool {
	addr := fmt.Sprintf(":%d", port)
	if network == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	l, err := net.Listen("tcp", addr)
	if err == nil {
		l.Close()
	}
	return err == nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default when it cannot be read), read once.
var ephemeralLow = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
})

// Buffer is a bytes.Buffer safe to read while a process writes it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Proc is a program running in the background for one test.
type Proc struct {
	T      testing.TB
	Cmd    *exec.Cmd
	Stdout *Buffer
	Stderr *Buffer
	Stdin  io.WriteCloser // nil unless started with a nil stdin
	done   chan struct{}
}

// Start runs name ("wirecat" means Bin) with args and a stdin pipe the test
// holds in p.Stdin.
func Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return StartWith(t, nil, nil, name, args...)
}

// StartWith runs name with stdin (nil: a pipe the test holds) and stdout
// (nil: a Buffer in p.Stdout).
func StartWith(t testing.TB, stdin io.Reader, stdout io.Writer, name string, args ...string) *Proc {
	t.Helper()
	sourcesNoted.Do(noteSources)
	if name == "wirecat" {
		name = Bin
	}
	p := &Proc{T: t, Cmd: exec.Command(name, args...), Stdout: &Buffer{}, Stderr: &Buffer{}, done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Stdout, p.Stderr
	if stdout != nil {
		p.Cmd.Stdout = stdout
	}
	// atexit_sleep_ms: a race-enabled binary otherwise sleeps 1s before exiting.
	p.Cmd.Env = append(os.Environ(), "NO_COLOR=1", "GORACE=atexit_sleep_ms=0")
	if stdin != nil {
		p.Cmd.Stdin = stdin
	} else {
		w, err := p.Cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.Stdin = w
	}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s %v\nstdout:\n%.4000s\nstderr:\n%.4000s", filepath.Base(name), args, p.Stdout, p.Stderr)
		}
	})
	return p
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit code.
func (p *Proc) Wait(timeout time.Duration) int {
	p.T.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.Cmd.Process.Kill()
		<-p.done
		p.T.Fatalf("%s did not exit within %v\nstderr: %.2000q", p.Cmd.Path, timeout, p.Stderr)
	}
	return p.Cmd.ProcessState.ExitCode()
}

// Signal sends sig and returns how long the process took to exit; the test
// fails if it is still running after limit.
func (p *Proc) Signal(sig syscall.Signal, limit time.Duration) time.Duration {
	p.T.Helper()
	begin := time.Now()
	p.Cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return time.Since(begin)
	case <-time.After(limit):
		p.Cmd.Process.Kill()
		<-p.done
		p.T.Fatalf("%s still running %v after %v\nstderr: %.2000q", filepath.Base(p.Cmd.Path), limit, sig, p.Stderr)
		return limit
	}
}

// WaitFor polls until cond holds or the timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitOutput waits until the process printed want on stdout.
func (p *Proc) WaitOutput(want string, timeout time.Duration) {
	p.T.Helper()
	WaitFor(p.T, timeout, fmt.Sprintf("stdout to contain %q", want), func() bool {
		return strings.Contains(p.Stdout.String(), want)
	})
}

// WaitStderr waits until the process printed want on stderr.
func (p *Proc) WaitStderr(want string, timeout time.Duration) {
	p.T.Helper()
	WaitFor(p.T, timeout, fmt.Sprintf("stderr to contain %q", want), func() bool {
		return strings.Contains(p.Stderr.String(), want)
	})
}

// WaitListen waits until a TCP port is in LISTEN state without connecting
// to it (a connection would be the one peer of a listen without -k).
func WaitListen(t testing.TB, port int) {
	t.Helper()
	waitProcNet(t, port, "tcp", "0A")
}

// WaitUDP waits until a UDP port is bound.
func WaitUDP(t testing.TB, port int) {
	t.Helper()
	waitProcNet(t, port, "udp", "")
}

func waitProcNet(t testing.TB, port int, proto, state string) {
	t.Helper()
	hex := fmt.Sprintf(":%04X ", port)
	WaitFor(t, 10*time.Second, fmt.Sprintf("%s port %d", proto, port), func() bool {
		for _, f := range []string{"/proc/net/" + proto, "/proc/net/" + proto + "6"} {
			b, _ := os.ReadFile(f)
			for _, line := range strings.Split(string(b), "\n") {
				fields := strings.Fields(line)
				if len(fields) > 3 && strings.HasSuffix(fields[1]+" ", hex) && (state == "" || fields[3] == state) {
					return true
				}
			}
		}
		return false
	})
}

// Run runs wirecat to completion with stdin and returns stdout, stderr and
// the exit code.
func Run(t testing.TB, stdin string, timeout time.Duration, args ...string) (string, string, int) {
	t.Helper()
	p := StartWith(t, strings.NewReader(stdin), nil, "wirecat", args...)
	code := p.Wait(timeout)
	return p.Stdout.String(), p.Stderr.String(), code
}

// FDs counts the open descriptors of process pid (-1 without /proc).
func FDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// RSS returns the resident set size of process pid in bytes (-1 without
// /proc).
func RSS(pid int) int64 { return statusKiB(pid, "VmRSS:") }

// PeakRSS returns the high-water resident set size of process pid in bytes.
func PeakRSS(pid int) int64 { return statusKiB(pid, "VmHWM:") }

func statusKiB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n << 10
		}
	}
	return -1
}
