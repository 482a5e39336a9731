package chaos

// Issue 14, "connections that heal": clients that reconnect through a relay
// that resets every connection every second. wirecat connect --reconnect
// clients → a resetting relay (below; relay/fault.go has no reset yet) →
// wirecat relay → the target, which checks every byte it accepts.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// resetter forwards each client to target and, every period, resets every
// pair it holds (SO_LINGER 0, so both sides get an RST), until stopped.
type resetter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	pairs  map[*net.TCPConn]*net.TCPConn
	resets int // connections reset
}

func newResetter(t *testing.T, target string) *resetter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &resetter{ln: ln, target: target, pairs: map[*net.TCPConn]*net.TCPConn{}}
	t.Cleanup(func() { ln.Close() })
	go r.serve()
	return r
}

func (r *resetter) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			s, err := net.Dial("tcp", r.target)
			if err != nil {
				c.Close()
				return
			}
			cc, sc := c.(*net.TCPConn), s.(*net.TCPConn)
			r.mu.Lock()
			r.pairs[cc] = sc
			r.mu.Unlock()
			done := make(chan struct{})
			go func() { io.Copy(sc, cc); sc.CloseWrite(); close(done) }()
			io.Copy(cc, sc)
			cc.CloseWrite()
			<-done
			r.mu.Lock()
			delete(r.pairs, cc)
			r.mu.Unlock()
			cc.Close()
			sc.Close()
		}()
	}
}

// resetAll resets every pair open now and says how many.
func (r *resetter) resetAll() (n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c, s := range r.pairs {
		n++
		c.SetLinger(0)
		s.SetLinger(0)
		c.Close()
		s.Close()
		delete(r.pairs, c)
		r.resets++
	}
	return n
}

// ledger is what the target accepted: per connection, its complete lines
// and the cut line it may end with.
type ledger struct {
	mu       sync.Mutex
	conns    [][]byte
	accepted int64
}

func (l *ledger) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Minute))
			b, _ := io.ReadAll(c) // to EOF or the reset
			l.mu.Lock()
			l.conns = append(l.conns, b)
			l.accepted += int64(len(b))
			l.mu.Unlock()
		}()
	}
}

// TestReconnectThroughResets: every client's lines reach the target in
// order, none twice, none altered; a line lost is one the kernel took as the
// relay reset; the clients' and the relay's descriptors do not grow.
func TestReconnectThroughResets(t *testing.T) {
	clients, rounds, every := 20, 3, 50*time.Millisecond // a line per client every 50 ms
	if *soak {
		// A line every 200 ms: 1,000 processes on two cores.
		clients, rounds, every = 1000, 10, 200*time.Millisecond
	}

	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	led := &ledger{}
	go led.serve(tl)

	rport := e2e.FreePort(t)
	relay := e2e.Start(t, "wirecat", "relay", fmt.Sprintf("127.0.0.1:%d", rport), tl.Addr().String(), "--retry", "forever")
	e2e.WaitListen(t, rport)
	relayFDs := e2e.FDs(relay.Pid())
	rs := newResetter(t, fmt.Sprintf("127.0.0.1:%d", rport))

	type client struct {
		p    *e2e.Proc
		sent int
		fds  int
	}
	cs := make([]*client, clients)
	for i := range cs {
		cs[i] = &client{p: e2e.Start(t, "wirecat", "connect", "--reconnect", rs.ln.Addr().String())}
	}
	// Start the clock once every client is connected (a thousand processes
	// take a while to start on two cores).
	e2e.WaitFor(t, 2*time.Minute, "every client to connect", func() bool {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		return len(rs.pairs) == clients
	})
	for _, c := range cs {
		c.fds = e2e.FDs(c.p.Pid())
	}
	// Each client sends "c<id> <seq>\n" every so often until stopped.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	began := time.Now()
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := fmt.Fprintf(c.p.Stdin, "c%d %d\n", i, c.sent); err != nil {
					return
				}
				c.sent++
				time.Sleep(every)
			}
		}()
	}
	// Reset everything every second, then let the last lines travel a
	// connection that stays for a second.
	tick := time.NewTicker(time.Second)
	var counts []string
	for range rounds {
		<-tick.C
		counts = append(counts, strconv.Itoa(rs.resetAll()))
	}
	tick.Stop()
	t.Logf("connections reset each second: %s", strings.Join(counts, " "))
	time.Sleep(time.Second)
	// A leak stays; a client caught between two connections settles.
	grew := 0
	settle := time.Now().Add(3 * time.Second)
	for _, c := range cs {
		n := e2e.FDs(c.p.Pid())
		for n > c.fds+1 && time.Now().Before(settle) {
			time.Sleep(20 * time.Millisecond)
			n = e2e.FDs(c.p.Pid())
		}
		if n > c.fds+1 {
			grew++
			t.Errorf("client pid %d: %d descriptors after the resets, %d before", c.p.Pid(), n, c.fds)
		}
	}
	close(stop)
	wg.Wait()
	run := time.Since(began).Round(100 * time.Millisecond)
	for _, c := range cs {
		c.p.Stdin.Close()
	}
	for i, c := range cs {
		if code := c.p.Wait(30 * time.Second); code != 0 {
			t.Errorf("client %d exited %d: %s", i, code, c.p.Stderr)
		}
	}
	e2e.WaitFor(t, 10*time.Second, "the relay to close its pairs", func() bool { return e2e.FDs(relay.Pid()) <= relayFDs })

	// Account for every byte the target accepted.
	led.mu.Lock()
	defer led.mu.Unlock()
	type seg struct{ first, last int }
	segs := make([][]seg, clients)
	var lines, cut, cutBytes int64
	for _, b := range led.conns {
		id, prev := -1, -1
		for len(b) > 0 {
			i := bytes.IndexByte(b, '\n')
			if i < 0 { // a line cut by a reset: it must begin like one
				if !bytes.HasPrefix(b, []byte("c")) && !bytes.HasPrefix([]byte("c"), b) {
					t.Fatalf("cut tail %q is not part of a line", b)
				}
				cut++
				cutBytes += int64(len(b))
				break
			}
			f := strings.Fields(string(b[:i]))
			var cid, seq int
			if len(f) == 2 && strings.HasPrefix(f[0], "c") {
				cid, _ = strconv.Atoi(f[0][1:])
				seq, err = strconv.Atoi(f[1])
			}
			if len(f) != 2 || err != nil || cid < 0 || cid >= clients || seq >= cs[cid].sent || id >= 0 && cid != id {
				t.Fatalf("line %q does not belong (connection of client %d)", b[:i], id)
			}
			// Within one connection nothing is lost: the next line, always.
			if prev >= 0 && seq != prev+1 {
				t.Fatalf("client %d: line %d after %d on one connection", cid, seq, prev)
			}
			if id < 0 {
				segs[cid] = append(segs[cid], seg{seq, seq})
			}
			id, prev = cid, seq
			segs[cid][len(segs[cid])-1].last = seq
			lines++
			b = b[i+1:]
		}
	}
	var lost int64
	for id, ss := range segs {
		sort.Slice(ss, func(i, j int) bool { return ss[i].first < ss[j].first })
		next := 0
		for _, s := range ss {
			if s.first < next {
				t.Fatalf("client %d: line %d arrived twice", id, s.first)
			}
			lost += int64(s.first - next)
			next = s.last + 1
		}
		if next != cs[id].sent {
			t.Errorf("client %d: the last line to arrive is %d of %d sent", id, next-1, cs[id].sent)
		}
	}
	var sent int64
	for _, c := range cs {
		sent += int64(c.sent)
	}
	t.Logf("%d clients, %d connections reset, %d lines sent, %d arrived whole, %d lost in flight at a reset, %d cut (%d bytes); the target accepted %d bytes",
		clients, rs.resets, sent, lines, lost, cut, cutBytes, led.accepted)
	if lines+lost != sent {
		t.Errorf("%d lines arrived + %d lost != %d sent", lines, lost, sent)
	}
	if rs.resets < clients*rounds*3/4 {
		t.Errorf("only %d resets for %d clients over %d rounds", rs.resets, clients, rounds)
	}
	figure(t, "heal-resets", "%d clients, %d connections reset over %v: %d of %d lines arrived whole, in order, none twice; %d lost in flight at a reset (%.3f%%), %d cut lines (%d B) at the resets; descriptors grew on %d clients, relay back to %d",
		clients, rs.resets, run, lines, sent, lost, 100*float64(lost)/float64(sent), cut, cutBytes, grew, e2e.FDs(relay.Pid()))
}
