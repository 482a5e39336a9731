package pipe

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
)

func udpAddr(i int) net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, byte(i>>8), byte(i)), Port: 1000 + i%1000}
}

// The table remembers at most its size: the least recently heard sender
// is the one forgotten, and a sender heard again moves to the front.
func TestPacketPeersForgetTheLeastRecentlyHeard(t *testing.T) {
	for _, size := range []int{1, 2, 3, 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			p := newPacketPeers(size)
			for i := range size {
				if _, isNew, gone := p.saw(udpAddr(i), "udp", "l", 0); !isNew || gone != nil {
					t.Fatalf("sender %d: new %v, gone %v", i, isNew, gone)
				}
			}
			p.saw(udpAddr(0), "udp", "l", 0) // 0 is the most recent now
			_, isNew, gone := p.saw(udpAddr(size), "udp", "l", 0)
			want := "127.0.0.1:1001"
			if size == 1 {
				want = "127.0.0.0:1000"
			}
			if !isNew || gone == nil || gone.Remote != want {
				t.Fatalf("a sender past %d: new %v, gone %+v (want %s)", size, isNew, gone, want)
			}
			if n := len(p.all()); n != size {
				t.Fatalf("%d senders known, want %d", n, size)
			}
		})
	}
}

// --max-conns counts the senders known now: one forgotten makes room.
func TestPacketPeersMaxCountsLiveSenders(t *testing.T) {
	p := newPacketPeers(maxSenders)
	for i := range 2 {
		if m, _, _ := p.saw(udpAddr(i), "udp", "l", 2); m == nil {
			t.Fatalf("sender %d refused", i)
		}
	}
	if m, _, _ := p.saw(udpAddr(2), "udp", "l", 2); m != nil {
		t.Fatal("a third sender was heard with max 2")
	}
	if m, isNew, _ := p.saw(udpAddr(1), "udp", "l", 2); m == nil || isNew {
		t.Fatal("a known sender was refused")
	}
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.mu.Lock()
	p.tail.last = 0 // sender 0 has been silent forever
	p.mu.Unlock()
	go p.expire(ctx, time.Hour, &Config{Sink: rec})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m, _, _ := p.saw(udpAddr(2), "udp", "l", 2); m != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the silent sender was not forgotten")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.kinds) != 1 || rec.kinds[0] != event.Close.String() {
		t.Fatalf("events: %v (want one close)", rec.kinds)
	}
}

// listen -u -k --idle: a silent sender is forgotten, not the listener.
func TestServePacketIdleForgetsASenderNotTheListener(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	cfg := config(t, "raw", rec)
	cfg.Idle = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServePacket(ctx, pc, "udp", cfg, nil, All) }()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("one"))
	time.Sleep(400 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the listener ended: %v", err)
	default:
	}
	c.Write([]byte("two"))
	deadline := time.Now().Add(5 * time.Second)
	for rec.received() != "one|two" {
		if time.Now().After(deadline) {
			t.Fatalf("received %q", rec.received())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := "open data close open data close"
	if got := fmt.Sprint(rec.kinds); got != "["+want+"]" {
		t.Fatalf("events %s, want [%s]", got, want)
	}
}
