package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/access"
	"github.com/wirecat-dev/wirecat/diag"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/internal/testpeer"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/proto"
)

// tcpSink accepts connections and hands what each one sent to got.
func tcpSink(t testing.TB) (string, chan []byte) {
	t.Helper()
	got := make(chan []byte, 16)
	return testpeer.TCP(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		got <- b
	}), got
}

func mustParse(t testing.TB, s string) link.Addr {
	t.Helper()
	a, err := link.Parse(s, false)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// startRelay runs a relay on a loopback port of listen's scheme and returns
// its address and the relay.
func startRelay(t testing.TB, listen string, cfg Config) (string, *Relay) {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = &diag.Log{W: io.Discard}
	}
	r := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	a := mustParse(t, listen)
	var addr string
	if a.Packet() {
		pc, err := link.ListenPacket(ctx, a, nil)
		if err != nil {
			t.Fatal(err)
		}
		addr = pc.LocalAddr().String()
		go func() { done <- r.ServePacket(ctx, pc, a.Transport()) }()
	} else {
		ln, err := link.Listen(ctx, a, nil)
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		go func() { done <- r.Serve(ctx, ln, a.Transport()) }()
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("relay: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("relay did not stop within 10s of its context ending")
		}
	})
	return addr, r
}

func dial(t testing.TB, network, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes payload, half-closes and reads everything back.
func roundTrip(t testing.TB, c net.Conn, payload []byte) []byte {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		c.(*net.TCPConn).CloseWrite()
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return got
}

func TestZeroCopyPathEchoesAndHalfCloses(t *testing.T) {
	target := testpeer.TCP(t, testpeer.Echo)
	addr, r := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target)})
	for _, size := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 3 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			payload := make([]byte, size)
			rand.Read(payload)
			got := roundTrip(t, dial(t, "tcp", addr), payload)
			if !bytes.Equal(got, payload) {
				t.Fatalf("got %d bytes back, want the %d sent", len(got), size)
			}
		})
	}
	if s := r.Stats(); s.ZeroCopy != s.Pairs || s.Pairs != 6 {
		t.Fatalf("stats %+v: every plain TCP pair should take the zero-copy path", s)
	}
}

// recorder is an event sink that keeps copies.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *recorder) Emit(e *event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := *e
	c.Data = bytes.Clone(e.Data)
	r.events = append(r.events, c)
	return nil
}

func (r *recorder) data() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Kind == event.Data {
			out = append(out, e.From.String()+":"+string(e.Data))
		}
	}
	return out
}

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Kind.String())
	}
	return out
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestInspectionTagsBothDirectionsMessageByMessage(t *testing.T) {
	target := testpeer.TCP(t, testpeer.Echo)
	rec := &recorder{}
	framer, _ := proto.Parse("line", nil)
	addr, r := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Framer: framer, Sink: rec})
	got := roundTrip(t, dial(t, "tcp", addr), []byte("one\ntwo\r\nthree"))
	if string(got) != "one\ntwo\r\nthree" { // the exact bytes: the CR and the missing newline too (issue 9)
		t.Fatalf("echo through a line relay = %q", got)
	}
	waitFor(t, "the close event", func() bool { k := rec.kinds(); return len(k) > 0 && k[len(k)-1] == "close" })
	var up, down []string
	for _, d := range rec.data() {
		if strings.HasPrefix(d, "client:") {
			up = append(up, d)
		} else {
			down = append(down, d)
		}
	}
	if fmt.Sprint(up) != "[client:one client:two client:three]" || fmt.Sprint(down) != "[server:one server:two server:three]" {
		t.Fatalf("events up %q down %q", up, down)
	}
	for _, e := range rec.events {
		if e.Role != event.Relay || e.Conn == 0 || e.Transport != "tcp" {
			t.Fatalf("event %+v: want role relay, a conn id and transport tcp", e)
		}
	}
	if r.Stats().ZeroCopy != 0 {
		t.Fatal("an inspected pair must not take the zero-copy path")
	}
}

func TestUDPSessionsToTCPServer(t *testing.T) {
	// A TCP server that answers each line with "ack " + line.
	conns := make(chan string, 4)
	target := testpeer.TCP(t, func(c net.Conn) {
		conns <- c.RemoteAddr().String()
		testpeer.Lines(func(s string) string { return "ack " + s })(c)
	})
	framer, _ := proto.Parse("line", nil)
	addr, r := startRelay(t, "udp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Framer: framer})
	ask := func(c net.Conn, msg string) string {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	a, b := dial(t, "udp", addr), dial(t, "udp", addr)
	for i := range 5 {
		if got := ask(a, fmt.Sprint("a", i)); got != fmt.Sprint("ack a", i) {
			t.Fatalf("sender a got %q", got)
		}
		if got := ask(b, fmt.Sprint("b", i)); got != fmt.Sprint("ack b", i) {
			t.Fatalf("sender b got %q", got)
		}
	}
	if len(conns) != 2 {
		t.Fatalf("two senders made %d upstream connections, want 2", len(conns))
	}
	if s := r.Stats(); s.Active != 2 {
		t.Fatalf("stats %+v: want 2 live sessions", s)
	}
}

func TestUDPSessionEndsWhenIdle(t *testing.T) {
	target := testpeer.TCP(t, testpeer.Echo)
	addr, r := startRelay(t, "udp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Idle: 200 * time.Millisecond})
	c := dial(t, "udp", addr)
	c.Write([]byte("hi"))
	buf := make([]byte, 10)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	waitFor(t, "the idle session to end", func() bool { return r.Stats().Active == 0 })
	c.Write([]byte("again"))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "again" {
		t.Fatalf("a new session after idle: read %q, %v", buf[:n], err)
	}
	if s := r.Stats(); s.Pairs != 2 {
		t.Fatalf("stats %+v: want a second session", s)
	}
}

func TestTCPClientToUDPServer(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	got := make(chan string, 10)
	go func() {
		buf := make([]byte, 1000)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
			pc.WriteTo(append([]byte("re:"), buf[:n]...), from)
		}
	}()
	framer, _ := proto.Parse("len:u16be", nil)
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "udp://"+pc.LocalAddr().String()), Framer: framer})
	c := dial(t, "tcp", addr)
	var wire []byte
	for _, m := range []string{"alpha", "beta", ""} {
		wire, _ = framer.Encode(wire, []byte(m))
	}
	c.Write(wire)
	for _, want := range []string{"alpha", "beta", ""} {
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("server got datagram %q, want %q", g, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no datagram %q", want)
		}
	}
	rd := proto.NewReader(c, framer, 0)
	for _, want := range []string{"re:alpha", "re:beta", "re:"} {
		m, err := rd.Next()
		if err != nil || string(m) != want {
			t.Fatalf("reply %q, %v; want %q", m, err, want)
		}
	}
	// Half-closing the TCP client ends the pair once the replies stop.
	c.(*net.TCPConn).CloseWrite()
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("after half-close: %v, want EOF", err)
	}
}

func TestUnreachableTargetClosesThatClientOnly(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	var log syncBuf
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+deadAddr), Log: &diag.Log{W: &log}})
	for range 3 {
		c := dial(t, "tcp", addr)
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("client of an unreachable target read %d, %v; want EOF", n, err)
		}
	}
	if !strings.Contains(log.String(), "connection refused; closing the client") {
		t.Fatalf("log %q does not give the reason", log.String())
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMaxConnsAndAccess(t *testing.T) {
	target := testpeer.TCP(t, testpeer.Echo)
	var log syncBuf
	addr, r := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), MaxConns: 2, Log: &diag.Log{W: &log}})
	a, b := dial(t, "tcp", addr), dial(t, "tcp", addr)
	waitFor(t, "two pairs", func() bool { return r.Stats().Active == 2 })
	c := dial(t, "tcp", addr)
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a third client got data past --max-conns 2")
	}
	if !strings.Contains(log.String(), "--max-conns 2 reached") {
		t.Fatalf("log %q", log.String())
	}
	a.Close()
	b.Close()

	acl, _ := access.Parse(nil, []string{"127.0.0.0/8"})
	addr2, r2 := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Access: acl, Log: &diag.Log{W: &log}})
	d := dial(t, "tcp", addr2)
	if _, err := d.Read(make([]byte, 1)); err == nil {
		t.Fatal("a denied client got data")
	}
	if r2.Stats().Pairs != 0 || !strings.Contains(log.String(), "not allowed by --allow/--deny") {
		t.Fatalf("denied client: stats %+v, log %q", r2.Stats(), log.String())
	}
}

func TestShutdownClosesEveryPair(t *testing.T) {
	target := testpeer.TCP(t, testpeer.Echo)
	rec := &recorder{}
	r := New(Config{Target: mustParse(t, "tcp://"+target), Sink: rec, Log: &diag.Log{W: io.Discard}})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Serve(ctx, ln, "tcp") }()
	var cs []net.Conn
	for range 5 {
		cs = append(cs, dial(t, "tcp", ln.Addr().String()))
	}
	waitFor(t, "five pairs", func() bool { return strings.Count(fmt.Sprint(rec.kinds()), "open") == 5 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	for _, c := range cs {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a client still open after shutdown")
		}
	}
	closes := 0
	for _, k := range rec.kinds() {
		if k == "close" {
			closes++
		}
	}
	if closes != 5 {
		t.Fatalf("%d close events, want 5", closes)
	}
}

func TestConcurrentPairsVerified(t *testing.T) {
	target := testpeer.TCP(t, testpeer.Echo)
	for _, mode := range []string{"zero-copy", "inspected"} {
		t.Run(mode, func(t *testing.T) {
			cfg := Config{Target: mustParse(t, "tcp://"+target)}
			if mode == "inspected" {
				cfg.Sink = &countSink{}
			}
			addr, _ := startRelay(t, "tcp://127.0.0.1:0", cfg)
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for i := range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					payload := make([]byte, 1000+i*997)
					rand.Read(payload)
					c, err := net.DialTimeout("tcp", addr, 5*time.Second)
					if err != nil {
						errs <- err
						return
					}
					defer c.Close()
					c.SetDeadline(time.Now().Add(20 * time.Second))
					go func() { c.Write(payload); c.(*net.TCPConn).CloseWrite() }()
					h := sha256.New()
					if _, err := io.Copy(h, c); err != nil {
						errs <- err
						return
					}
					if want := sha256.Sum256(payload); !bytes.Equal(h.Sum(nil), want[:]) {
						errs <- fmt.Errorf("conn %d: checksum differs", i)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

type countSink struct {
	mu sync.Mutex
	n  int
}

func (c *countSink) Emit(e *event.Event) error {
	c.mu.Lock()
	c.n += len(e.Data)
	c.mu.Unlock()
	return nil
}
