package link

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// A stream socket bound without a connection, live or stale, is told apart
// without a listener ever seeing a peer.
func TestBoundProbe(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: live, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	if alive, known := boundProbe(live); !alive || !known {
		t.Fatalf("live socket: alive %v known %v", alive, known)
	}
	ul.SetDeadline(time.Now().Add(100 * time.Millisecond))
	if c, err := ul.Accept(); err == nil {
		c.Close()
		t.Fatal("the probe was accepted as a peer")
	}
	stale := filepath.Join(dir, "stale.sock")
	sl, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	sl.SetUnlinkOnClose(false)
	sl.Close()
	if alive, known := boundProbe(stale); alive || !known {
		t.Fatalf("stale socket: alive %v known %v", alive, known)
	}
}

// A listener in another network namespace is not in this one's
// /proc/net/unix, yet its socket file is live: a second listen must refuse
// it, not delete it, and must not connect to it either.
func TestListenSparesAnotherNamespacesSocket(t *testing.T) {
	e2e.Need(t, "python3")
	if err := exec.Command("unshare", "-rn", "true").Run(); err != nil {
		t.Skipf("cannot enter a new network namespace: %v", err)
	}
	path := filepath.Join(t.TempDir(), "ns.sock")
	// A one-shot listener: it reports a peer if one connects, and exits
	// after a few seconds otherwise.
	src := `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1); print("ready", flush=True)
s.settimeout(5)
try:
    s.accept(); print("peer", flush=True)
except socket.timeout:
    print("none", flush=True)
`
	cmd := exec.Command("unshare", "-rn", "python3", "-c", src, path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	r := bufio.NewReader(out)
	if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("listener: %q %v", line, err)
	}
	if alive, _ := listedListening(path); alive {
		t.Skip("the other namespace's socket is listed here: nothing to test")
	}
	a := mustParse(t, "unix://"+path)
	err = clearStale(a)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("clearStale: %v, want address already in use", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the live socket was removed: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // a probe that connected would be accepted by now
	cmd.Process.Signal(syscall.SIGTERM)
	line, _ := r.ReadString('\n')
	if strings.TrimSpace(line) == "peer" {
		t.Fatal("the probe connected: a one-shot listener took it as its peer")
	}
	cmd.Wait()
}
