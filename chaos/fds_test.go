package chaos

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// fdLimit is the descriptor limit the listeners run under: the default
// soft limit of most distributions.
const fdLimit = 1024

// idleClients is how many idle clients the limit tests open: more than
// fdLimit, so the listener runs out. Cheap enough to run at full size in CI.
const idleClients = 1100

// dialIdle opens n idle clients to addr (each waits for the kernel's
// handshake only, not for the server to accept).
func dialIdle(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("idle client %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	return conns
}

// shed closes the idle clients the server closed at the limit (they read
// EOF or a reset) and returns the ones it still serves. It gives the
// server settle to close them first.
func shed(conns []net.Conn, settle time.Duration) (served []net.Conn, closed int) {
	time.Sleep(settle)
	var b [1]byte
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(b[:]); err != nil && !os.IsTimeout(err) {
			c.Close()
			closed++
			continue
		}
		c.SetReadDeadline(time.Time{})
		served = append(served, c)
	}
	return served, closed
}

// underLimit runs wirecat with args under prlimit --nofile=fdLimit.
func underLimit(t *testing.T, args ...string) *e2e.Proc {
	t.Helper()
	e2e.Need(t, "prlimit")
	return e2e.Start(t, "prlimit", append([]string{fmt.Sprintf("--nofile=%d", fdLimit), e2e.Bin}, args...)...)
}

// Issue 9 item 3: at the descriptor limit, listen -k closes new clients at
// once (they do not hang in the backlog), says why once, never exits, and
// serves a healthy client within a second of descriptors freeing.
func TestFDLimitListen(t *testing.T) {
	port := e2e.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := underLimit(t, "listen", "-k", "--recv-only", addr)
	e2e.WaitListen(t, port)

	conns := dialIdle(t, addr, idleClients)
	p.WaitStderr("too many open files", 10*time.Second)
	served, closed := shed(conns, time.Second)
	if closed == 0 {
		t.Fatalf("%d clients over a limit of %d: none was closed, they hang", idleClients, fdLimit)
	}
	t.Logf("%d idle clients served, %d closed at the limit; listener holds %d descriptors",
		len(served), closed, e2e.FDs(p.Pid()))

	// One more client at the limit is closed, not left hanging.
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Fatalf("a client at the limit: %v (want it closed at once)", err)
	}
	c.Close()

	// Free descriptors, then a healthy client is served within a second.
	// One that arrives before the listener has seen the closes is still
	// closed at the limit, and tries again, as a real client would.
	for _, c := range served[:100] {
		c.Close()
	}
	freed := time.Now()
	var took time.Duration
	for try := 0; took == 0 && time.Since(freed) < 5*time.Second; try++ {
		h, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		token := fmt.Sprintf("healthy %d\n", try)
		fmt.Fprint(h, token)
		for end := time.Now().Add(time.Second); time.Now().Before(end); {
			if strings.Contains(p.Stdout.String(), token) {
				took = time.Since(freed)
				break
			}
			h.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			if _, err := h.Read(make([]byte, 1)); err != nil && !os.IsTimeout(err) {
				break // closed at the limit: try again
			}
		}
	}
	if took == 0 {
		t.Fatalf("no healthy client served within 5s of descriptors freeing")
	}
	figure(t, "listen -k at the fd limit, served again after descriptors free", "%v (target ≤ 1s; %d idle clients, %d closed at the limit)",
		took.Round(time.Millisecond), idleClients, closed)
	if took > time.Second {
		t.Errorf("healthy client served %v after descriptors freed (want ≤ 1s)", took)
	}
	select {
	case <-p.Done():
		t.Fatalf("the listener exited: %s", p.Stderr)
	default:
	}
	if n := strings.Count(p.Stderr.String(), "too many open files"); n != 1 {
		t.Errorf("the limit was reported %d times (want once, rate-limited):\n%.2000s", n, p.Stderr)
	}
	if strings.Contains(p.Stderr.String(), "wirecat: : ") {
		t.Errorf("an error without a name: %s", p.Stderr)
	}
	p.Signal(syscall.SIGTERM, 2*time.Second)
}

// The relay at the descriptor limit: the same promise as listen -k.
func TestFDLimitRelay(t *testing.T) {
	target := echoServer(t)
	port := e2e.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := underLimit(t, "relay", addr, target)
	e2e.WaitListen(t, port)

	conns := dialIdle(t, addr, idleClients)
	p.WaitStderr("too many open files", 10*time.Second)
	// Which clients are relayed (their byte comes back), closed at the
	// limit, or still waiting?
	time.Sleep(time.Second)
	for _, c := range conns {
		c.Write([]byte("x"))
	}
	time.Sleep(time.Second)
	var served, slow []net.Conn
	closed, waiting := 0, 0
	// A loaded machine (the race detector, parallel packages) may still be
	// moving a byte: the silent ones get three more seconds in all.
	late := time.Now().Add(3 * time.Second)
	for pass, pending := 0, conns; pass < 2; pass, pending, slow = pass+1, slow, nil {
		for _, c := range pending {
			deadline := time.Now().Add(time.Millisecond)
			if pass == 1 {
				deadline = late
			}
			c.SetReadDeadline(deadline)
			var b [1]byte
			_, err := c.Read(b[:])
			switch {
			case err == nil:
				c.SetReadDeadline(time.Time{})
				served = append(served, c)
			case os.IsTimeout(err):
				slow = append(slow, c)
			default:
				closed++
			}
		}
		waiting = len(slow)
	}
	t.Logf("%d idle clients relayed, %d closed at the limit, %d waiting; relay holds %d descriptors",
		len(served), closed, waiting, e2e.FDs(p.Pid()))
	figure(t, "relay at the fd limit, clients left waiting", "%d of %d (relayed %d, closed %d)", waiting, idleClients, len(served), closed)
	if closed == 0 || waiting > 0 {
		t.Fatalf("%d clients over a limit of %d: %d left waiting (want them closed at once)", idleClients, fdLimit, waiting)
	}
	for _, c := range served[:100] {
		c.Close()
	}
	freed := time.Now()
	var took time.Duration
	// A client closed because the target could not be dialled at the limit
	// is told so; retry until one is relayed.
	for time.Since(freed) < 5*time.Second {
		h, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		h.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(h, "ping\n")
		line, err := bufio.NewReader(h).ReadString('\n')
		h.Close()
		if err == nil && line == "ping\n" {
			took = time.Since(freed)
			break
		}
	}
	if took == 0 {
		t.Fatalf("no client relayed within 5s of descriptors freeing")
	}
	figure(t, "relay at the fd limit, served again after descriptors free", "%v (target ≤ 1s)", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("healthy client relayed %v after descriptors freed (want ≤ 1s)", took)
	}
	select {
	case <-p.Done():
		t.Fatalf("the relay exited: %s", p.Stderr)
	default:
	}
	p.Signal(syscall.SIGTERM, 2*time.Second)
}

// The relay's plain path holds at most 3 descriptors per idle pair (the
// two connections; Go's splice held 4 more pipe ends), and gives them all
// back within 5 s of the last client leaving.
func TestRelayIdleDescriptors(t *testing.T) {
	pairs := 200
	if *soak {
		pairs = 2000
	}
	target := echoServer(t)
	port := e2e.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := e2e.Start(t, "wirecat", "relay", addr, target)
	e2e.WaitListen(t, port)
	// The port listens a moment before the accept loop opens its spare
	// descriptor: let it settle before counting.
	time.Sleep(300 * time.Millisecond)
	base := e2e.FDs(p.Pid())

	conns := dialIdle(t, addr, pairs)
	// Push a message through every pair so each has moved bytes both ways.
	rd := make([]byte, 5)
	for _, c := range conns {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "ping\n")
		if _, err := io.ReadFull(c, rd); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	busy := e2e.FDs(p.Pid())
	per := float64(busy-base) / float64(pairs)
	figure(t, "relay descriptors per idle pair", "%.2f (target ≤ 3; %d pairs)", per, pairs)
	if per > 3 {
		t.Errorf("%.2f descriptors per idle pair (want ≤ 3)", per)
	}
	for _, c := range conns {
		c.Close()
	}
	left := time.Now()
	e2e.WaitFor(t, 10*time.Second, fmt.Sprintf("descriptors back to baseline %d", base), func() bool {
		return e2e.FDs(p.Pid()) <= base
	})
	took := time.Since(left)
	figure(t, "relay descriptors back to baseline", "%v after the last client left (target ≤ 5s)", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("descriptors back to baseline %v after the clients left (want ≤ 5s)", took)
	}
}
