//go:build linux

package link

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// At the descriptor limit an Acceptor closes the waiting client at once,
// says why once, and accepts again as soon as a descriptor frees.
func TestAcceptorAtTheLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var notes []string
	acc := NewAcceptor(ln, func(format string, args ...any) {
		mu.Lock()
		notes = append(notes, format)
		mu.Unlock()
	})
	defer acc.Close()

	// Lower this process's soft limit to just above what it holds now, so
	// a few accepted conns reach it (restored at the end).
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Skip(err)
	}
	var pads []*os.File
	for range 2 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		pads = append(pads, f)
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	// The clients' own descriptors count too: each accepted conn costs two.
	lim := old
	lim.Cur = uint64(len(ents) + 12)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type accepted struct {
		c   net.Conn
		err error
	}
	got := make(chan accepted, 100)
	go func() {
		for {
			c, err := acc.Accept(ctx)
			got <- accepted{c, err}
			if err != nil {
				return
			}
		}
	}()
	var clients, servers []net.Conn
	defer func() {
		for _, c := range append(clients, servers...) {
			c.Close()
		}
	}()
	// Fill up: dial until a client is closed by the server instead of
	// accepted (the shed), or the dial itself fails at the limit.
	var shed net.Conn
	for i := 0; i < 40 && shed == nil; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			// The test's own side hit the limit first: free one of its
			// pads, so the dial takes the last descriptor and the server
			// has none.
			if len(pads) == 0 {
				break
			}
			pads[0].Close()
			pads = pads[1:]
			continue
		}
		select {
		case a := <-got:
			if a.err != nil {
				t.Fatal(a.err)
			}
			clients, servers = append(clients, c), append(servers, a.c)
		case <-time.After(500 * time.Millisecond):
			shed = c
		}
	}
	if shed == nil {
		t.Skip("the limit was not reached by the server first")
	}
	shed.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := shed.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Fatalf("a client at the limit: %v (want it closed)", err)
	}
	shed.Close()
	mu.Lock()
	if len(notes) != 2 || !strings.Contains(notes[0], "closing new clients") || !strings.HasPrefix(notes[1], "hint: ") {
		t.Errorf("notes at the limit: %q", notes)
	}
	mu.Unlock()

	// Free two descriptors: the next client is accepted.
	clients[0].Close()
	servers[0].Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	clients[0] = c
	select {
	case a := <-got:
		if a.err != nil {
			t.Fatal(a.err)
		}
		servers[0] = a.c
	case <-time.After(2 * time.Second):
		t.Fatal("not accepted after descriptors freed")
	}
}

func TestAcceptorClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	acc := NewAcceptor(ln, nil)
	defer acc.Close()
	ln.Close()
	if _, err := acc.Accept(context.Background()); !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Accept on a closed listener: %v", err)
	}
}
