package pipe

import (
	"bytes"
	"context"
	"net"
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
