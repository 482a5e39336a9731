package pipe

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/diag"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
)

// Beyond the bound, datagrams from new senders are dropped with one notice;
// the senders already running are answered.
func TestPacketExecBounded(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var senders []net.PacketConn
	for range 3 {
		s, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		senders = append(senders, s)
	}
	f, _ := proto.Parse("raw", nil)
	var log bytes.Buffer
	cfg := &Config{Framer: f, MaxFrame: 1 << 20, Sink: event.Discard, Log: &diag.Log{W: &log}}
	x := NewPacketExec(context.Background(), pc, cfg, "cat", 2)
	for i, s := range senders {
		x.Emit(&event.Event{Kind: event.Data, Conn: uint64(i + 1), Transport: "udp", Remote: s.LocalAddr().String(),
			Role: event.Server, From: event.Client, Data: []byte("ping")})
	}
	buf := make([]byte, 100)
	for i, s := range senders {
		s.SetReadDeadline(time.Now().Add(map[bool]time.Duration{true: 5 * time.Second, false: 300 * time.Millisecond}[i < 2]))
		n, _, err := s.ReadFrom(buf)
		switch {
		case i < 2 && (err != nil || string(buf[:n]) != "ping"):
			t.Fatalf("sender %d: %q, %v", i, buf[:n], err)
		case i == 2 && err == nil:
			t.Fatalf("sender 3 over the bound was answered: %q", buf[:n])
		}
	}
	x.Wait()
	if !strings.Contains(log.String(), "--exec: 2 processes running, one per sender") {
		t.Fatalf("no notice: %q", log.String())
	}
}

// A command that ignores the end of its stdin is killed execStopGrace after
// its sender is gone: the listener's end never waits on it for ever.
func TestPacketExecStopsStubbornCommand(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	f, _ := proto.Parse("raw", nil)
	var log bytes.Buffer
	cfg := &Config{Framer: f, MaxFrame: 1 << 20, Sink: event.Discard, Log: &diag.Log{W: &log}}
	x := NewPacketExec(context.Background(), pc, cfg, "exec sleep 60", 0)
	for range 70 { // more than the queue, for a command that never reads
		x.Emit(&event.Event{Kind: event.Data, Conn: 1, Transport: "udp", Remote: "127.0.0.1:9",
			Role: event.Server, From: event.Client, Data: bytes.Repeat([]byte("x"), 2000)})
	}
	time.Sleep(100 * time.Millisecond)
	begin := time.Now()
	x.Wait()
	if took := time.Since(begin); took > execStopGrace+time.Second {
		t.Fatalf("Wait took %v", took)
	}
}

// A command that exits at once is restarted by its sender's next datagram;
// each restart must leave no goroutine behind (the stdin writer used to wait
// for ever on a queue nobody closed once writing failed).
func TestPacketExecRestartsLeakNothing(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	f, _ := proto.Parse("raw", nil)
	var log bytes.Buffer
	cfg := &Config{Framer: f, MaxFrame: 1 << 20, Sink: event.Discard, Log: &diag.Log{W: &log}}
	x := NewPacketExec(context.Background(), pc, cfg, "exec true", 0)
	before := runtime.NumGoroutine()
	for range 20 {
		for range 20 {
			x.Emit(&event.Event{Kind: event.Data, Conn: 1, Transport: "udp", Remote: "127.0.0.1:9",
				Role: event.Server, From: event.Client, Data: bytes.Repeat([]byte("x"), 70000)})
		}
		// Let this run exit before the next burst restarts it.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			x.mu.Lock()
			p := x.procs[1]
			x.mu.Unlock()
			if p == nil {
				break
			}
			select {
			case <-p.done:
			case <-time.After(10 * time.Millisecond):
				continue
			}
			break
		}
	}
	time.Sleep(200 * time.Millisecond)
	after := runtime.NumGoroutine()
	x.Wait()
	if after > before+5 {
		t.Fatalf("goroutines %d -> %d after 20 restarts", before, after)
	}
}

// With --exec, a listener for every sender forgets a silent one even
// without --idle or --max-conns: 64 long-lived commands must not hold every
// place for good.
func TestPacketExecSendersExpire(t *testing.T) {
	cfg := &Config{Log: &diag.Log{}}
	if d := senderIdle(cfg, All); d != 0 {
		t.Fatalf("no bound: senders expire after %v", d)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	NewPacketExec(context.Background(), pc, cfg, "cat", 0)
	if d := senderIdle(cfg, All); d != defaultPeerIdle {
		t.Fatalf("--exec: senders expire after %v, want %v", d, defaultPeerIdle)
	}
	if d := senderIdle(cfg, Latest); d != 0 {
		t.Fatalf("latest sender: expiry %v", d)
	}
	cfg.Idle = time.Second
	if d := senderIdle(cfg, All); d != time.Second {
		t.Fatalf("--idle 1s: expiry %v", d)
	}
}

// The notice that the bound drops new senders comes back once in a while,
// not once per run.
func TestPacketExecBoundNoticeRepeats(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	f, _ := proto.Parse("raw", nil)
	var log bytes.Buffer
	cfg := &Config{Framer: f, MaxFrame: 1 << 20, Sink: event.Discard, Log: &diag.Log{W: &log}}
	x := NewPacketExec(context.Background(), pc, cfg, "exec sleep 60", 1)
	emit := func(conn uint64) {
		x.Emit(&event.Event{Kind: event.Data, Conn: conn, Transport: "udp", Remote: "127.0.0.1:9",
			Role: event.Server, From: event.Client, Data: []byte("x")})
	}
	emit(1)
	emit(2)
	emit(3)
	x.mu.Lock()
	x.notedAt = x.notedAt.Add(-boundNoteEvery) // as if the notice were that old
	x.mu.Unlock()
	emit(4)
	x.Wait()
	if n := strings.Count(log.String(), "processes running, one per sender"); n != 2 {
		t.Fatalf("%d notices, want 2: %q", n, log.String())
	}
}
