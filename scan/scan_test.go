package scan

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParsePorts(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want []uint16
		err  string
	}{
		{"22", []uint16{22}, ""},
		{"1-3", []uint16{1, 2, 3}, ""},
		{"80,22,80,21-23", []uint16{80, 22, 21, 23}, ""},
		{"65535", []uint16{65535}, ""},
		{"", nil, "empty"},
		{"0", nil, "out of range 1-65535"},
		{"65536", nil, "out of range 1-65535"},
		{"5-3", nil, "ends before it starts"},
		{"22,", nil, "empty item"},
		{"http", nil, `"http" is not a port number`},
		{"+22", nil, `"+22" is not a port number`},
		{"1-", nil, `"" is not a port number`},
	} {
		got, err := ParsePorts(tc.spec)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePorts(%q) = %v, want error containing %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParsePorts(%q) = %v, %v; want %v", tc.spec, got, err, tc.want)
		}
	}
	all, err := ParsePorts("1-65535,1-65535")
	if err != nil || len(all) != 65535 {
		t.Fatalf("1-65535 twice: %d ports, %v", len(all), err)
	}
}

// listeners opens n loopback listeners and returns their ports.
func listeners(t *testing.T, n int) []uint16 {
	var ports []uint16
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		ports = append(ports, uint16(l.Addr().(*net.TCPAddr).Port))
	}
	return ports
}

func TestScanFindsOpenPortsInOrder(t *testing.T) {
	open := listeners(t, 3)
	// closed ports: bound and closed again, so nobody listens there now
	closed := listeners(t, 0)
	for range 3 {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		closed = append(closed, uint16(l.Addr().(*net.TCPAddr).Port))
		l.Close()
	}
	ports := Ports{closed[0], open[0], closed[1], open[1], open[2], closed[2]}
	var got []Result
	err := Scan(context.Background(), netip.MustParseAddr("127.0.0.1"), ports, Options{Parallel: 4}, func(r Result) { got = append(got, r) })
	if err != nil {
		t.Fatal(err)
	}
	want := []State{Closed, Open, Closed, Open, Open, Closed}
	if len(got) != len(want) {
		t.Fatalf("got %d results, want %d", len(got), len(want))
	}
	for i, r := range got {
		if r.Port != ports[i] || r.State != want[i] {
			t.Errorf("result %d: %d %v, want %d %v", i, r.Port, r.State, ports[i], want[i])
		}
	}
}

func TestScanIPv6AndSource(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback")
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	var got []Result
	err = Scan(context.Background(), netip.MustParseAddr("::1"), Ports{port}, Options{Source: netip.MustParseAddr("::1")}, func(r Result) { got = append(got, r) })
	if err != nil || len(got) != 1 || got[0].State != Open {
		t.Fatalf("got %v, %v", got, err)
	}
	err = Scan(context.Background(), netip.MustParseAddr("::1"), Ports{port}, Options{Source: netip.MustParseAddr("127.0.0.1")}, func(Result) {})
	if err == nil || !strings.Contains(err.Error(), "not the same IP version") {
		t.Fatalf("mixed families: %v", err)
	}
}

func TestScanStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	ports, _ := ParsePorts("1-65535")
	Scan(ctx, netip.MustParseAddr("127.0.0.1"), ports, Options{Parallel: 2}, func(Result) {})
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a cancelled scan took %v", d)
	}
}

func BenchmarkScanLoopback(b *testing.B) {
	ports, _ := ParsePorts("1-65535")
	for b.Loop() {
		n := 0
		Scan(context.Background(), netip.MustParseAddr("127.0.0.1"), ports, Options{}, func(r Result) {
			if r.State == Open {
				n++
			}
		})
	}
}

// silentPort returns a loopback port whose SYNs go unanswered: a listener
// with a backlog of 0 that never accepts, its one place taken.
func silentPort(t *testing.T) uint16 {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	port := sa.(*syscall.SockaddrInet4).Port
	for range 4 { // fill the backlog; the connect that times out shows it is full
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
		if err != nil {
			return uint16(port)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("the backlog never filled")
	return 0
}

// Silent ports wait in flight together: four of them take one timeout.
func TestScanSilentPortsInParallel(t *testing.T) {
	var ports Ports
	for range 4 {
		ports = append(ports, silentPort(t))
	}
	start := time.Now()
	var got []State
	err := Scan(context.Background(), netip.MustParseAddr("127.0.0.1"), ports, Options{Timeout: 500 * time.Millisecond}, func(r Result) { got = append(got, r.State) })
	took := time.Since(start)
	if err != nil || !slices.Equal(got, []State{Silent, Silent, Silent, Silent}) {
		t.Fatalf("got %v, %v", got, err)
	}
	if took < 450*time.Millisecond || took > 1500*time.Millisecond { // one at a time: 2s
		t.Fatalf("four silent ports took %v: want about one timeout (500ms)", took)
	}
	// With one in flight they wait in turn.
	start = time.Now()
	Scan(context.Background(), netip.MustParseAddr("127.0.0.1"), ports[:2], Options{Timeout: 200 * time.Millisecond, Parallel: 1}, func(Result) {})
	if took := time.Since(start); took < 380*time.Millisecond {
		t.Fatalf("two silent ports, one at a time, took %v: want two timeouts", took)
	}
}
