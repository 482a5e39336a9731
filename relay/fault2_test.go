package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/testpeer"
)

func TestParseNewFaults(t *testing.T) {
	cases := []struct {
		in   FaultSpecs
		want Faults
	}{
		{FaultSpecs{Reset: []string{"1s"}}, Faults{ResetTime: time.Second}},
		{FaultSpecs{Reset: []string{"up:64KiB"}}, Faults{Up: DirFaults{ResetBytes: 64 << 10}}},
		{FaultSpecs{Reset: []string{"5%"}}, Faults{Up: DirFaults{Reset: 0.05}, Down: DirFaults{Reset: 0.05}}},
		{FaultSpecs{Reset: []string{"down:0.5"}}, Faults{Down: DirFaults{Reset: 0.5}}},
		{FaultSpecs{Slice: []string{"16"}}, Faults{Up: DirFaults{SliceMin: 1, SliceMax: 16}, Down: DirFaults{SliceMin: 1, SliceMax: 16}}},
		{FaultSpecs{Slice: []string{"up:2-8/1ms"}}, Faults{Up: DirFaults{SliceMin: 2, SliceMax: 8, SlicePause: time.Millisecond}}},
		{FaultSpecs{Corrupt: []string{"down:1%"}}, Faults{Down: DirFaults{Corrupt: 0.01}}},
		{FaultSpecs{Blackhole: []string{"up"}}, Faults{Up: DirFaults{Blackhole: true}}},
		{FaultSpecs{Blackhole: []string{"both"}}, Faults{Up: DirFaults{Blackhole: true}, Down: DirFaults{Blackhole: true}}},
	}
	for _, c := range cases {
		got, err := ParseFaults(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseFaults(%+v) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		// Specs writes them back as flags that parse to the same.
		again, err := ParseFaults(got.Specs())
		if err != nil || again != got {
			t.Errorf("ParseFaults(%+v.Specs() = %+v) = %+v, %v", got, got.Specs(), again, err)
		}
	}
	bad := []struct {
		in   FaultSpecs
		want string
	}{
		{FaultSpecs{Reset: []string{"up:1s"}}, "without up: or down:"},
		{FaultSpecs{Reset: []string{"lots"}}, "--reset"},
		{FaultSpecs{Reset: []string{"150%"}}, "out of range"},
		{FaultSpecs{Slice: []string{"8-2"}}, "more than the largest"},
		{FaultSpecs{Slice: []string{"0"}}, "1 to 64KiB"},
		{FaultSpecs{Slice: []string{"4/soon"}}, "bad pause"},
		{FaultSpecs{Corrupt: []string{"sideways:1%"}}, "unknown direction"},
		{FaultSpecs{Blackhole: []string{"left"}}, "want up, down, both or off"},
	}
	for _, c := range bad {
		_, err := ParseFaults(c.in)
		if !errors.Is(err, ErrBadFault) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseFaults(%+v) = %v; want an error with %q", c.in, err, c.want)
		}
	}
	// Every fault of a full set survives Specs.
	full := FaultSpecs{Delay: []string{"up:200ms", "down:50ms"}, Jitter: []string{"up:20ms"}, Drop: []string{"0.25"},
		Rate: []string{"down:10KiB/s"}, CutAfter: []string{"2s", "1000", "up:500"}, Reset: []string{"3s", "up:4096", "down:2%"},
		Slice: []string{"1-4/1ms"}, Corrupt: []string{"0.5"}, Blackhole: []string{"down"}}
	f, err := ParseFaults(full)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := ParseFaults(f.Specs()); err != nil || again != f {
		t.Fatalf("full set: %+v → %+v → %+v, %v", f, f.Specs(), again, err)
	}
}

// isReset reports whether err is a connection reset by the peer.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// --reset SIZE: the client gets a RST once that many bytes went up, and
// the server got exactly that many.
func TestResetAfterBytes(t *testing.T) {
	target, got := tcpSink(t)
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Faults: Faults{Up: DirFaults{ResetBytes: 1000}}})
	c := dial(t, "tcp", addr)
	c.Write(bytes.Repeat([]byte("a"), 600))
	time.Sleep(30 * time.Millisecond)
	c.Write(bytes.Repeat([]byte("b"), 600))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(c)
	if !isReset(err) {
		t.Fatalf("the client read %v, want a connection reset", err)
	}
	select {
	case recv := <-got:
		if len(recv) != 1000 {
			t.Fatalf("the server got %d bytes through --reset up:1000", len(recv))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server never saw the end")
	}
}

// --reset DUR resets every pair that long after it opened.
func TestResetAfterTime(t *testing.T) {
	target := lineServer(t)
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Faults: Faults{ResetTime: 150 * time.Millisecond}})
	c := dial(t, "tcp", addr)
	start := time.Now()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(c)
	if took := time.Since(start); !isReset(err) || took < 140*time.Millisecond || took > 2*time.Second {
		t.Fatalf("after %v: %v, want a reset after 150ms", took, err)
	}
}

// --reset P resets on a message with probability P: at 100% the first.
func TestResetProbability(t *testing.T) {
	target := lineServer(t)
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Framer: lineFramer(t), Faults: Faults{Up: DirFaults{Reset: 1}}})
	c := dial(t, "tcp", addr)
	fmt.Fprintf(c, "one\n")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); !isReset(err) {
		t.Fatalf("read %v, want a reset", err)
	}
}

// --blackhole up: the server never sees the client's bytes nor its end;
// the server's bytes still come down.
func TestBlackhole(t *testing.T) {
	seen := make(chan []byte, 1)
	target := testpeer.TCP(t, func(c net.Conn) {
		io.WriteString(c, "hello\n")
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		b, _ := io.ReadAll(c)
		seen <- b
	})
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Faults: Faults{Up: DirFaults{Blackhole: true}}})
	c := dial(t, "tcp", addr)
	io.WriteString(c, "anyone there?\n")
	c.(*net.TCPConn).CloseWrite()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hello\n" {
		t.Fatalf("down: %q %v", line, err)
	}
	if b := <-seen; len(b) != 0 {
		t.Fatalf("the server saw %q through a black hole", b)
	}
}

// --slice: the bytes arrive exactly, in many small reads.
func TestSlice(t *testing.T) {
	reads := make(chan []int, 1)
	data := make(chan []byte, 1)
	target := testpeer.TCP(t, func(c net.Conn) {
		var sizes []int
		var all []byte
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				sizes = append(sizes, n)
				all = append(all, buf[:n]...)
			}
			if err != nil {
				break
			}
		}
		reads <- sizes
		data <- all
	})
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target),
		Faults: Faults{Up: DirFaults{SliceMin: 1, SliceMax: 8, SlicePause: 200 * time.Microsecond}}})
	c := dial(t, "tcp", addr)
	payload := []byte(strings.Repeat("0123456789", 100))
	c.Write(payload)
	c.(*net.TCPConn).CloseWrite()
	sizes, got := <-reads, <-data
	if !bytes.Equal(got, payload) {
		t.Fatalf("sliced bytes differ: %d bytes back, want %d", len(got), len(payload))
	}
	big := 0
	for _, n := range sizes {
		if n > 8 {
			big++
		}
	}
	if len(sizes) < 100 || big > len(sizes)/4 {
		t.Fatalf("1000 bytes in %d reads (%d over 8 bytes): not sliced", len(sizes), big)
	}
}

// --corrupt 1 flips exactly one bit of every message.
func TestCorrupt(t *testing.T) {
	target, got := tcpSink(t)
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Framer: lineFramer(t), Faults: Faults{Up: DirFaults{Corrupt: 1}}})
	c := dial(t, "tcp", addr)
	var sent bytes.Buffer
	for i := range 100 {
		fmt.Fprintf(&sent, "message %03d\n", i)
	}
	c.Write(sent.Bytes())
	c.(*net.TCPConn).CloseWrite()
	recv := <-got
	if len(recv) != sent.Len() {
		t.Fatalf("%d bytes back, want %d", len(recv), sent.Len())
	}
	// Lines are re-framed after the flip, so compare message by message.
	want := sent.Bytes()
	flips := 0
	for i := range want {
		flips += bitCount(want[i] ^ recv[i])
	}
	if flips != 100 {
		t.Fatalf("%d bits flipped in 100 messages at --corrupt 1, want 100", flips)
	}
}

func bitCount(b byte) int {
	n := 0
	for ; b != 0; b &= b - 1 {
		n++
	}
	return n
}

// controlDo sends one request to the control API.
func controlDo(t *testing.T, addr, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s", method, path, auth, len(body), body)
	br := bufio.NewReader(c)
	var status int
	if _, err := fmt.Fscanf(br, "HTTP/1.1 %d", &status); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	_, js, _ := strings.Cut(string(rest), "\r\n\r\n")
	var out map[string]any
	if err := json.Unmarshal([]byte(js), &out); err != nil {
		t.Fatalf("answer %q: %v", js, err)
	}
	return status, out
}

func startControl(t *testing.T, r *Relay, token string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.ServeControl(ctx, ln, token); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// The control API changes the faults of a pair already open, lists and
// resets pairs, and refuses bad bodies, methods and tokens with a reason.
func TestControlAPI(t *testing.T) {
	target := lineServer(t)
	addr, r := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Dynamic: true})
	ctl := startControl(t, r, "s3cret")
	c := dial(t, "tcp", addr)
	rd := bufio.NewReader(c)
	rtt := func() time.Duration {
		t0 := time.Now()
		io.WriteString(c, "ping\n")
		if l, err := rd.ReadString('\n'); err != nil || l != "ping\n" {
			t.Fatalf("echo %q %v", l, err)
		}
		return time.Since(t0)
	}
	if d := rtt(); d > 50*time.Millisecond {
		t.Fatalf("no faults yet, round trip %v", d)
	}
	if st, out := controlDo(t, ctl, "PUT", "/faults", "s3cret", `{"delay":["up:150ms"]}`); st != 200 || out["args"] != "--delay up:150ms" {
		t.Fatalf("PUT /faults: %d %v", st, out)
	}
	if d := rtt(); d < 140*time.Millisecond {
		t.Fatalf("after --delay up:150ms through the API, round trip %v", d)
	}
	st, out := controlDo(t, ctl, "GET", "/conns", "s3cret", "")
	conns, _ := out["conns"].([]any)
	if st != 200 || len(conns) != 1 {
		t.Fatalf("GET /conns: %d %v", st, out)
	}
	id := conns[0].(map[string]any)["id"].(float64)
	for _, bad := range []struct {
		method, path, token, body string
		status                    int
		want                      string
	}{
		{"GET", "/faults", "", "", 401, "token"},
		{"GET", "/faults", "wrong", "", 401, "token"},
		{"PUT", "/faults", "s3cret", `{"delai":["1s"]}`, 400, "unknown field"},
		{"PUT", "/faults", "s3cret", `{"delay":["soon"]}`, 400, "--delay"},
		{"PUT", "/faults", "s3cret", `not json`, 400, "bad body"},
		{"POST", "/conns", "s3cret", ``, 405, "want GET"},
		{"GET", "/nothing", "s3cret", ``, 404, "want /faults or /conns"},
		{"DELETE", "/conns/9999", "s3cret", ``, 404, "no connection 9999"},
	} {
		st, out := controlDo(t, ctl, bad.method, bad.path, bad.token, bad.body)
		if msg, _ := out["error"].(string); st != bad.status || !strings.Contains(msg, bad.want) {
			t.Errorf("%s %s %q: %d %v, want %d and %q", bad.method, bad.path, bad.body, st, out, bad.status, bad.want)
		}
	}
	// The relay still serves with its faults after bad requests.
	if d := rtt(); d < 140*time.Millisecond {
		t.Fatalf("round trip %v after bad requests", d)
	}
	if st, _ := controlDo(t, ctl, "DELETE", fmt.Sprintf("/conns/%d", int(id)), "s3cret", ""); st != 200 {
		t.Fatalf("DELETE: %d", st)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(rd); !isReset(err) {
		t.Fatalf("after DELETE the client read %v, want a reset", err)
	}
}

// An outage refuses new clients and resets open ones; after it, clients
// are served again.
func TestOutage(t *testing.T) {
	target := lineServer(t)
	addr, r := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Dynamic: true})
	c := dial(t, "tcp", addr)
	io.WriteString(c, "x\n")
	if l, err := bufio.NewReader(c).ReadString('\n'); err != nil || l != "x\n" {
		t.Fatalf("echo %q %v", l, err)
	}
	waitFor(t, "the pair to be listed", func() bool { return len(r.Conns()) == 1 })
	if n := r.SetDown("outage (test)"); n != 1 {
		t.Fatalf("SetDown reset %d pairs, want 1", n)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); !isReset(err) {
		t.Fatalf("open pair: %v, want a reset", err)
	}
	// The reset may come before the dial has returned: it fails with it then.
	c2, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		defer c2.Close()
		c2.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c2)
	}
	if !isReset(err) {
		t.Fatalf("new client during the outage: %v, want a reset", err)
	}
	r.SetDown("")
	roundTrip(t, dial(t, "tcp", addr), []byte("back\n"))
}

func TestParsePlan(t *testing.T) {
	ws, err := ParseDown([]string{"5s@30s", "2s@10s"})
	if err != nil || len(ws) != 2 || ws[0] != (Window{At: 10 * time.Second, For: 2 * time.Second}) {
		t.Fatalf("%v %v", ws, err)
	}
	for _, bad := range []struct{ in, want string }{
		{"5s", "DURATION@START"}, {"0s@1s", "bad duration"}, {"1s@later", "bad start"},
	} {
		if _, err := ParseDown([]string{bad.in}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseDown(%q) = %v, want %q", bad.in, err, bad.want)
		}
	}
	if _, err := ParseDown([]string{"5s@30s", "10s@32s"}); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("overlap: %v", err)
	}
	base := FaultSpecs{Drop: []string{"0.1"}}
	steps, err := ParseAt([]string{"20s", "10s --delay up:200ms --drop=0.5"}, base)
	if err != nil || len(steps) != 2 || steps[0].At != 10*time.Second || steps[0].Faults.Up.Delay != 200*time.Millisecond ||
		steps[0].Faults.Up.Drop != 0.5 || steps[1].Faults.Up.Drop != 0.1 || steps[1].Faults.Up.Delay != 0 {
		t.Fatalf("%+v %v", steps, err)
	}
	for _, bad := range []struct{ in, want string }{
		{"soon --delay 1s", "bad time"}, {"1s --dealy 1s", `unknown fault "--dealy"`}, {"1s --delay", "needs a value"},
		{"1s --delay forever", "--delay"},
	} {
		if _, err := ParseAt([]string{bad.in}, base); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseAt(%q) = %v, want %q", bad.in, err, bad.want)
		}
	}
	if _, err := ParseAt([]string{"1s --drop 0.2", "1s --drop 0.3"}, base); err == nil || !strings.Contains(err.Error(), "both at 1s") {
		t.Errorf("same time: %v", err)
	}
}

// A stall holds new clients and open pairs; when it ends every byte goes
// through, none lost.
func TestHold(t *testing.T) {
	target := lineServer(t)
	addr, r := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Dynamic: true})
	c := dial(t, "tcp", addr)
	rd := bufio.NewReader(c)
	io.WriteString(c, "before\n")
	if l, _ := rd.ReadString('\n'); l != "before\n" {
		t.Fatalf("echo %q", l)
	}
	r.SetHold(true)
	io.WriteString(c, "during\n")
	c2 := dial(t, "tcp", addr)
	io.WriteString(c2, "new client\n")
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if l, err := rd.ReadString('\n'); err == nil {
		t.Fatalf("%q went through a stall", l)
	}
	c.SetReadDeadline(time.Time{})
	t0 := time.Now()
	r.SetHold(false)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	if l, err := rd.ReadString('\n'); l != "during\n" || time.Since(t0) > time.Second {
		t.Fatalf("after the stall: %q %v", l, err)
	}
	if l, err := bufio.NewReader(c2).ReadString('\n'); l != "new client\n" {
		t.Fatalf("held client after the stall: %q %v", l, err)
	}
	ws, err := ParseOutages([]string{"5s@10s"}, []string{"2s@12s"})
	if err == nil || !strings.Contains(err.Error(), "--hold 2s@12s overlaps --down 5s@10s") {
		t.Fatalf("%v %v", ws, err)
	}
}
