package pipe

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
)

// slowLines yields "0\n", "1\n", ... n lines, one per millisecond, as stdin
// typed by a device would.
type slowLines struct{ i, n int }

func (s *slowLines) Next() (Message, error) {
	if s.i == s.n {
		return Message{}, io.EOF
	}
	time.Sleep(time.Millisecond)
	b := []byte(strconv.Itoa(s.i) + "\n")
	s.i++
	return Message{Payload: b, Wire: b}, nil
}

// TestRedialCarriesOn: a server that closes, then resets, then reads to the
// end; the lines it got are in order, none twice, and the last is there.
func TestRedialCarriesOn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		for i := 0; i < 3; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(20 * time.Second))
			r := bufio.NewReader(c)
			for j := 0; i == 2 || j < 20; j++ {
				line, err := r.ReadString('\n')
				if err != nil {
					break
				}
				lines = append(lines, strings.TrimSpace(line))
			}
			if i == 1 {
				c.(*net.TCPConn).SetLinger(0) // a reset
			}
			c.Close()
		}
		got <- lines
	}()
	ids := 0
	dial := func(ctx context.Context) (net.Conn, Meta, error) {
		c, err := net.Dial("tcp", ln.Addr().String())
		ids++
		return c, Meta{ID: uint64(ids), Role: event.Client}, err
	}
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 200
	err = Redial(ctx, dial, config(t, "line", rec), &slowLines{n: n}, func(int) time.Duration { return 10 * time.Millisecond })
	if err != nil {
		t.Fatalf("Redial: %v", err)
	}
	lines := <-got
	if ids != 3 {
		t.Errorf("%d connections, want 3", ids)
	}
	prev := -1
	for _, l := range lines {
		v, err := strconv.Atoi(l)
		if err != nil || v <= prev {
			t.Fatalf("line %q after %d: out of order, repeated or cut (%v)", l, prev, lines)
		}
		prev = v
	}
	if prev != n-1 || len(lines) < 40 {
		t.Errorf("last line %d of %d lines, want %d", prev, len(lines), n-1)
	}
	t.Logf("%d of %d lines arrived over %d connections", len(lines), n, ids)
}

// TestRedialGivesUp: a dial that fails ends Redial with its error.
func TestRedialGivesUp(t *testing.T) {
	boom := fmt.Errorf("no route")
	err := Redial(context.Background(), func(context.Context) (net.Conn, Meta, error) { return nil, Meta{}, boom },
		config(t, "raw", &recorder{}), &slowLines{n: 1}, func(int) time.Duration { return 0 })
	if err != boom {
		t.Fatalf("got %v", err)
	}
}
