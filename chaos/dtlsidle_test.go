package chaos

// Issue 11, DTLS: UDP has no end, so an association whose client went
// silent (or vanished without close_notify) is ended by the listener after
// --idle, 5 minutes by default with -k, in every mode: here with --exec,
// one process per association, whose descriptors must all come back.

import (
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

func TestDTLSIdleAssociationsEnd(t *testing.T) {
	n, idle := 40, time.Second
	if *soak {
		n = 400
	}
	port := e2e.FreeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wc := e2e.Start(t, "wirecat", "listen", "-k", "dtls://"+addr, "--psk", chaosPSK, "--psk-identity", chaosID,
		"--exec", "cat", "--idle", idle.String(), "-v")
	e2e.WaitUDP(t, port)
	base := e2e.FDs(wc.Pid())

	// n clients each get an echo, then fall silent (their sockets stay
	// open: to the listener a vanished client looks the same).
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	begin := time.Now()
	for i := 0; i < n; i++ {
		c, _, err := handshake(addr, pskOptions())
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "hello %d\n", i)
		buf := make([]byte, 64)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if m, err := c.Read(buf); err != nil || string(buf[:m]) != fmt.Sprintf("hello %d\n", i) {
			t.Fatalf("client %d: echo %q, %v", i, buf[:m], err)
		}
	}
	busy := e2e.FDs(wc.Pid())
	if busy < base+n { // at least a pipe per --exec process
		t.Fatalf("%d descriptors with %d associations (%d idle): not one per association", busy, n, base)
	}
	// Each client hears the listener end its association (close_notify).
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(idle + 10*time.Second))
		if _, err := c.Read(make([]byte, 64)); err != io.EOF {
			t.Fatalf("client %d: after the idle time read %v, want the end (EOF)", i, err)
		}
	}
	ended := time.Since(begin)
	var after int
	e2e.WaitFor(t, 10*time.Second, "the descriptors back", func() bool {
		after = e2e.FDs(wc.Pid())
		return after <= base
	})
	figure(t, "dtls-idle", "%d associations silent for --idle %v: descriptors %d idle, %d busy, %d after (all ended %v after the first opened)",
		n, idle, base, busy, after, ended.Round(time.Millisecond))
	if got := strings.Count(wc.Stderr.String(), "sent nothing for "+idle.String()+": association ended (--idle)"); got != n {
		t.Errorf("%d -v lines name the idle end, want %d:\n%s", got, n, wc.Stderr)
	}
	// Still serving.
	c, _, err := handshake(addr, pskOptions())
	if err != nil {
		t.Fatalf("after the idle ends: %v", err)
	}
	c.Close()
	wc.Signal(syscall.SIGTERM, time.Second)

	// Without --idle, -k's default is said with -v.
	port = e2e.FreeUDPPort(t)
	wc = e2e.Start(t, "wirecat", "listen", "-k", fmt.Sprintf("dtls://127.0.0.1:%d", port), "--psk", chaosPSK, "-v")
	wc.WaitStderr("dtls: associations nothing crosses for 5m0s end (--idle)", 10*time.Second)
	wc.Signal(syscall.SIGTERM, time.Second)
}
