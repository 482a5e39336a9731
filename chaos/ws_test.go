package chaos

// Issue 11 (WebSocket) under issue 9's rules: many wss clients on one
// `listen -k`, every message verified both ways; a signal ends a WebSocket
// listener and client within a second even when a peer never answers the
// close; silent half-open upgrades hold nobody up.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
	"github.com/wirecat-dev/wirecat/internal/testpeer"
	"github.com/wirecat-dev/wirecat/link"
)

// TestWSSManyClients: N concurrent wss:// clients (1,000 with -chaos.soak)
// each send 3 messages to one `listen -k`, which must print each exactly
// once; then a line on the listener's stdin must reach every client, whole.
func TestWSSManyClients(t *testing.T) {
	n := 200
	if *soak {
		n = 1000
	}
	port := e2e.FreePort(t)
	url := fmt.Sprintf("wss://127.0.0.1:%d/c", port)
	l := e2e.Start(t, "wirecat", "listen", "-k", url)
	e2e.WaitListen(t, port)
	a, err := link.Parse(url, false)
	if err != nil {
		t.Fatal(err)
	}
	opts := &link.Options{TLS: link.TLSOptions{Insecure: true}, Timeout: 20 * time.Second}

	start := time.Now()
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64) // handshakes in flight at once
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			c, err := link.Dial(context.Background(), a, opts)
			<-sem
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
				return
			}
			conns[i] = c
			for j := range 3 {
				if _, err := fmt.Fprintf(c, "client %d message %d", i, j); err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	connected := time.Since(start)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	e2e.WaitFor(t, 30*time.Second, "every message on the listener's stdout", func() bool {
		return strings.Count(l.Stdout.String(), "\n") >= 3*n
	})
	fds := e2e.FDs(l.Pid())
	lines := strings.Split(strings.TrimSuffix(l.Stdout.String(), "\n"), "\n")
	sort.Strings(lines)
	var want []string
	for i := range n {
		for j := range 3 {
			want = append(want, fmt.Sprintf("client %d message %d", i, j))
		}
	}
	sort.Strings(want)
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the listener printed %d lines, want the %d sent, each once", len(lines), len(want))
	}

	// stdin goes to every client as one message.
	fmt.Fprint(l.Stdin, "hello all\n")
	buf := make([]byte, 100)
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		k, err := c.Read(buf)
		if err != nil || string(buf[:k]) != "hello all\n" {
			t.Fatalf("client %d read %q, %v", i, buf[:k], err)
		}
	}
	took := time.Since(start)
	figure(t, "wss clients", "%d concurrent wss clients on one listen -k: all connected in %v, every message verified both ways in %v; listener %d fds, %.1f MiB RSS (peak %.1f MiB)",
		n, connected.Round(time.Millisecond), took.Round(time.Millisecond), fds, float64(e2e.RSS(l.Pid()))/(1<<20), float64(e2e.PeakRSS(l.Pid()))/(1<<20))
	if fds < n {
		t.Fatalf("listener holds %d descriptors for %d clients: are they all connected?", fds, n)
	}
}

// silentUpgrade upgrades a WebSocket by hand and then never reads or
// writes: it will never answer a ping or a close.
func silentUpgrade(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return c
}

// TestWSSignalWithSilentPeers: a listener with live clients and peers that
// never answer a close, and a client of such a peer, end within a second
// of SIGTERM / SIGINT.
func TestWSSignalWithSilentPeers(t *testing.T) {
	port := e2e.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	l := e2e.Start(t, "wirecat", "listen", "-k", "ws://"+addr+"/s")
	e2e.WaitListen(t, port)
	for range 5 {
		defer silentUpgrade(t, addr, "/s").Close()
	}
	a, _ := link.Parse("ws://"+addr+"/s", false)
	for range 5 {
		c, err := link.Dial(context.Background(), a, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("live"))
	}
	e2e.WaitFor(t, 10*time.Second, "the live clients' messages", func() bool { return strings.Count(l.Stdout.String(), "live\n") == 5 })
	took := l.Signal(syscall.SIGTERM, time.Second)
	figure(t, "ws listener SIGTERM", "ended %v after SIGTERM with 5 live and 5 silent peers", took.Round(time.Millisecond))

	// A client whose server upgrades and then goes silent.
	server := testpeer.TCP(t, func(c net.Conn) {
		if testpeer.WSUpgrade(c) == nil {
			time.Sleep(10 * time.Second)
		}
	})
	c := e2e.Start(t, "wirecat", "connect", "ws://"+server+"/")
	e2e.WaitFor(t, 10*time.Second, "the connection", func() bool { return e2e.FDs(c.Pid()) > 0 })
	time.Sleep(300 * time.Millisecond)
	took = c.Signal(syscall.SIGINT, time.Second)
	figure(t, "ws client SIGINT", "ended %v after SIGINT with a server that never answers the close", took.Round(time.Millisecond))
}

// TestWSHalfOpenUpgrades: clients that open TCP and never finish their
// upgrade request hold nobody up, and their descriptors come back when
// they leave.
func TestWSHalfOpenUpgrades(t *testing.T) {
	n := 200
	if *soak {
		n = 2000
	}
	port := e2e.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	l := e2e.Start(t, "wirecat", "listen", "-k", "ws://"+addr+"/h")
	e2e.WaitListen(t, port)
	time.Sleep(200 * time.Millisecond)
	base := e2e.FDs(l.Pid())
	var silent []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET /h HTTP/1.1\r\nHost: x\r\n")) // and never the rest
		silent = append(silent, c)
	}
	a, _ := link.Parse("ws://"+addr+"/h", false)
	t0 := time.Now()
	c, err := link.Dial(context.Background(), a, &link.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("through"))
	l.WaitOutput("through\n", 5*time.Second)
	served := time.Since(t0)
	c.Close()
	peak := e2e.FDs(l.Pid())
	for _, s := range silent {
		s.Close()
	}
	e2e.WaitFor(t, 10*time.Second, "descriptors back", func() bool { return e2e.FDs(l.Pid()) <= base+2 })
	figure(t, "ws half-open upgrades", "%d half-open upgrades: a real client served in %v; listener fds %d → %d → %d", n, served.Round(time.Millisecond), base, peak, e2e.FDs(l.Pid()))
}
