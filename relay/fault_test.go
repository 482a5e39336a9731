package relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/testpeer"
	"github.com/wirecat-dev/wirecat/proto"
)

func TestParseFaults(t *testing.T) {
	ok := []struct {
		in   FaultSpecs
		want Faults
	}{
		{FaultSpecs{Delay: []string{"100ms"}}, Faults{Up: DirFaults{Delay: 100 * time.Millisecond}, Down: DirFaults{Delay: 100 * time.Millisecond}}},
		{FaultSpecs{Delay: []string{"up:100ms", "down:0.05"}, Jitter: []string{"up:20ms"}},
			Faults{Up: DirFaults{Delay: 100 * time.Millisecond, Jitter: 20 * time.Millisecond}, Down: DirFaults{Delay: 50 * time.Millisecond}}},
		{FaultSpecs{Drop: []string{"0.5"}}, Faults{Up: DirFaults{Drop: 0.5}, Down: DirFaults{Drop: 0.5}}},
		{FaultSpecs{Drop: []string{"down:25%"}}, Faults{Down: DirFaults{Drop: 0.25}}},
		{FaultSpecs{Rate: []string{"up:10KiB/s"}}, Faults{Up: DirFaults{Rate: 10240}}},
		{FaultSpecs{CutAfter: []string{"2s"}}, Faults{CutTime: 2 * time.Second}},
		{FaultSpecs{CutAfter: []string{"1KiB"}}, Faults{CutBytes: 1024}},
		{FaultSpecs{CutAfter: []string{"500"}}, Faults{CutBytes: 500}},
		{FaultSpecs{CutAfter: []string{"down:1MB"}}, Faults{Down: DirFaults{CutBytes: 1e6}}},
	}
	for _, c := range ok {
		got, err := ParseFaults(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseFaults(%+v) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	bad := []struct {
		in   FaultSpecs
		want string
	}{
		{FaultSpecs{Delay: []string{"-1s"}}, `--delay "-1s"`},
		{FaultSpecs{Delay: []string{"sideways:1s"}}, `--delay "sideways:1s"`},
		{FaultSpecs{Jitter: []string{"50ms"}}, "more than --delay"},
		{FaultSpecs{Delay: []string{"10ms"}, Jitter: []string{"up:20ms"}}, "more than --delay"},
		{FaultSpecs{Drop: []string{"1.5"}}, "out of range"},
		{FaultSpecs{Drop: []string{"-0.1"}}, "out of range"},
		{FaultSpecs{Drop: []string{"half"}}, "bad probability"},
		{FaultSpecs{Rate: []string{"0"}}, `--rate "0"`},
		{FaultSpecs{Rate: []string{"fast"}}, `--rate "fast"`},
		{FaultSpecs{CutAfter: []string{"0s"}}, "more than 0"},
		{FaultSpecs{CutAfter: []string{"0"}}, "more than 0"},
		{FaultSpecs{CutAfter: []string{"up:2s"}}, "without up: or down:"},
		{FaultSpecs{CutAfter: []string{"soon"}}, "want a duration"},
	}
	for _, c := range bad {
		_, err := ParseFaults(c.in)
		if err == nil || !errors.Is(err, ErrBadFault) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseFaults(%+v) = %v; want an ErrBadFault naming %q", c.in, err, c.want)
		}
	}
}

// lineServer answers each line with the same line.
func lineServer(t testing.TB) string {
	return testpeer.TCP(t, testpeer.Lines(func(s string) string { return s }))
}

func lineFramer(t testing.TB) proto.Framer {
	f, err := proto.Parse("line", nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDelayDelaysEachWayAndKeepsOrder(t *testing.T) {
	target := lineServer(t)
	f := Faults{Up: DirFaults{Delay: 60 * time.Millisecond, Jitter: 30 * time.Millisecond}, Down: DirFaults{Delay: 40 * time.Millisecond}}
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Framer: lineFramer(t), Faults: f})
	c := dial(t, "tcp", addr)
	rd := bufio.NewReader(c)
	start := time.Now()
	const n = 50
	for i := range n {
		fmt.Fprintf(c, "m%d\n", i)
	}
	for i := range n {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line != fmt.Sprintf("m%d\n", i) {
			t.Fatalf("message %d is %q: jitter reordered a stream", i, line)
		}
		if i == 0 {
			if rtt := time.Since(start); rtt < 70*time.Millisecond {
				t.Fatalf("first round trip took %v; 30..90ms up and 40ms down cannot be under 70ms", rtt)
			}
		}
	}
	// One message alone: its round trip is about 100ms (60±30 + 40).
	t0 := time.Now()
	fmt.Fprintf(c, "solo\n")
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(t0); rtt < 70*time.Millisecond || rtt > 400*time.Millisecond {
		t.Fatalf("round trip %v, want about 100ms", rtt)
	}
}

func TestDropDropsAboutThatShare(t *testing.T) {
	target, got := tcpSink(t)
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Framer: lineFramer(t),
		Faults: Faults{Up: DirFaults{Drop: 0.5}}})
	c := dial(t, "tcp", addr)
	var b bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&b, "%d\n", i)
	}
	c.Write(b.Bytes())
	c.(*net.TCPConn).CloseWrite()
	var recv []byte
	select {
	case recv = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the server never saw the end")
	}
	n := bytes.Count(recv, []byte("\n"))
	if n < 350 || n > 650 {
		t.Fatalf("%d of 1000 messages went through --drop 0.5", n)
	}
}

func TestRateHoldsWithinTenPercent(t *testing.T) {
	target, got := tcpSink(t)
	const rate = 200 << 10
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Faults: Faults{Up: DirFaults{Rate: rate}}})
	c := dial(t, "tcp", addr)
	payload := bytes.Repeat([]byte("x"), rate) // one second's worth
	start := time.Now()
	c.Write(payload)
	c.(*net.TCPConn).CloseWrite()
	var recv []byte
	select {
	case recv = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the server never saw the end")
	}
	took := time.Since(start)
	if len(recv) != len(payload) {
		t.Fatalf("got %d bytes, want %d", len(recv), len(payload))
	}
	if took < 900*time.Millisecond || took > 1100*time.Millisecond {
		t.Fatalf("%d bytes at %d B/s took %v, want 1s ±10%%", len(payload), rate, took)
	}
}

func TestCutAfterBytesAndTime(t *testing.T) {
	target, got := tcpSink(t)
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Faults: Faults{CutBytes: 1000}})
	c := dial(t, "tcp", addr)
	c.Write(bytes.Repeat([]byte("y"), 600))
	time.Sleep(50 * time.Millisecond)
	c.Write(bytes.Repeat([]byte("z"), 600))
	select {
	case recv := <-got:
		if len(recv) != 1000 {
			t.Fatalf("server got %d bytes through --cut-after 1000", len(recv))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the pair was not cut")
	}
	if _, err := io.ReadAll(c); err != nil && !isGone(err) {
		t.Fatalf("client after the cut: %v", err)
	}

	addr, _ = startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Faults: Faults{CutTime: 150 * time.Millisecond}})
	c = dial(t, "tcp", addr)
	start := time.Now()
	c.Write([]byte("hello"))
	io.ReadAll(c)
	if took := time.Since(start); took < 140*time.Millisecond || took > 2*time.Second {
		t.Fatalf("--cut-after 150ms closed the client after %v", took)
	}
	if recv := <-got; string(recv) != "hello" {
		t.Fatalf("server got %q", recv)
	}
}

func TestDatagramFaultsUDPToUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2000)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	addr, _ := startRelay(t, "udp://127.0.0.1:0", Config{Target: mustParse(t, "udp://"+pc.LocalAddr().String()),
		Faults: Faults{Down: DirFaults{Delay: 80 * time.Millisecond}}})
	c := dial(t, "udp", addr)
	start := time.Now()
	c.Write([]byte("ping"))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if rtt := time.Since(start); rtt < 80*time.Millisecond {
		t.Fatalf("udp round trip %v with an 80ms delay down", rtt)
	}
}

func FuzzParseFaults(f *testing.F) {
	for _, s := range []string{"100ms", "up:1s", "down:0.5", "50%", "10KiB/s", "1MB", "up:", "down:-1", "1e400", "NaN"} {
		f.Add(s, s, s, s, s)
	}
	f.Fuzz(func(t *testing.T, delay, jitter, drop, rate, cut string) {
		got, err := ParseFaults(FaultSpecs{Delay: []string{delay}, Jitter: []string{jitter}, Drop: []string{drop}, Rate: []string{rate}, CutAfter: []string{cut}})
		if err != nil {
			if !errors.Is(err, ErrBadFault) {
				t.Fatalf("error %v is not an ErrBadFault", err)
			}
			return
		}
		for _, d := range []DirFaults{got.Up, got.Down} {
			if d.Drop < 0 || d.Drop > 1 || d.Delay < 0 || d.Jitter > d.Delay || d.Rate != 0 && d.Rate < 1 || d.CutBytes < 0 {
				t.Fatalf("accepted out-of-range faults %+v", got)
			}
		}
		if got.CutTime < 0 || got.CutBytes < 0 {
			t.Fatalf("accepted a negative cut %+v", got)
		}
	})
}

// isGone reports a write to or read from a peer that already left.
func isGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed)
}
