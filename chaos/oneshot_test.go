package chaos

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// Issue 9 item 7: a second listen on a unix socket checked whether the
// first was alive by connecting to it; the first, one-shot, took that probe
// as its peer, exited 0 and deleted its socket. The probe is no peer now.
func TestUnixProbeIsNoPeer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.sock")
	first := e2e.Start(t, "wirecat", "listen", "unix://"+path)
	e2e.WaitFor(t, 5*time.Second, "the socket file", func() bool { _, err := os.Stat(path); return err == nil })

	_, stderr, code := e2e.Run(t, "", 5*time.Second, "listen", "unix://"+path)
	if code == 0 || !strings.Contains(stderr, "already in use") {
		t.Fatalf("second listener: exit %d, %q (want a refusal)", code, stderr)
	}
	select {
	case <-first.Done():
		t.Fatalf("the first listener exited after the probe: %s", first.Stderr)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the socket file is gone: %v", err)
	}
	// Its real peer is still served.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "hello\n")
	c.Close()
	first.WaitOutput("hello\n", 5*time.Second)
	if code := first.Wait(5 * time.Second); code != 0 {
		t.Fatalf("first listener exit %d: %s", code, first.Stderr)
	}
}

// A client that connects to a one-shot TLS listener and says nothing held
// it for the 10 s handshake timeout; the first client to complete a
// handshake is served now, at once.
func TestSilentTLSHandshake(t *testing.T) {
	port := e2e.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := e2e.Start(t, "wirecat", "listen", "tls://"+addr)
	e2e.WaitListen(t, port)

	var silent []net.Conn
	for range 3 {
		s, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		silent = append(silent, s)
	}
	start := time.Now()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("a real client behind silent ones: %v", err)
	}
	fmt.Fprintf(c, "hello\n")
	p.WaitOutput("hello\n", 5*time.Second)
	took := time.Since(start)
	figure(t, "one-shot TLS listener behind 3 silent clients", "served in %v (was 10 s per silent client)", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("served %v after connecting (want at once)", took)
	}
	c.Close()
	if code := p.Wait(5 * time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, p.Stderr)
	}
	// The silent ones were let go.
	for _, s := range silent {
		s.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := s.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
			t.Errorf("a silent client still held: %v", err)
		}
	}
}
