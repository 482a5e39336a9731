package relay

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/testpeer"
)

// The zero-copy claim, measured: one TCP stream through the relay's plain
// path (io.Copy between bare *net.TCPConn, splice on Linux), next to no
// relay at all, a user-space copy through a 32 KiB buffer, and the
// inspected path (every chunk shown to a sink).
//
//	go test ./relay -run '^$' -bench Relay -benchtime 1s

// sinkServer reads everything and reports the count when the peer closes.
func sinkServer(b *testing.B) (string, chan int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 256<<10)
		var n int64
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if err != nil {
				break
			}
		}
		got <- n
	}()
	return ln.Addr().String(), got
}

func pushThrough(b *testing.B, addr string, got chan int64) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	chunk := make([]byte, 1<<20)
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	if n := <-got; n != int64(b.N)*int64(len(chunk)) {
		b.Fatalf("sink got %d bytes, want %d", n, b.N*len(chunk))
	}
}

// userspaceRelay copies through a buffer, hiding ReadFrom/WriteTo so no
// splice happens: what a relay that wraps its conns pays.
func userspaceRelay(b *testing.B, target string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		io.CopyBuffer(struct{ io.Writer }{s}, struct{ io.Reader }{c}, make([]byte, 32<<10))
		s.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, s)
		s.Close()
		c.Close()
	}()
	return ln.Addr().String()
}

func BenchmarkRelayStream(b *testing.B) {
	b.Run("direct", func(b *testing.B) {
		addr, got := sinkServer(b)
		pushThrough(b, addr, got)
	})
	b.Run("zero-copy", func(b *testing.B) {
		target, got := sinkServer(b)
		addr, r := startRelay(b, "tcp://127.0.0.1:0", Config{Target: mustParse(b, "tcp://"+target)})
		pushThrough(b, addr, got)
		if r.Stats().ZeroCopy != 1 {
			b.Fatal("the plain pair did not take the zero-copy path")
		}
	})
	b.Run("userspace-32k", func(b *testing.B) {
		target, got := sinkServer(b)
		pushThrough(b, userspaceRelay(b, target), got)
	})
	b.Run("inspected", func(b *testing.B) {
		target, got := sinkServer(b)
		addr, _ := startRelay(b, "tcp://127.0.0.1:0", Config{Target: mustParse(b, "tcp://"+target), Sink: &countSink{}})
		pushThrough(b, addr, got)
	})
}

// BenchmarkRelayRoundTrip bounces one byte off an echo; p50-µs is the
// median round trip (compare "direct" for what the relay adds).
func BenchmarkRelayRoundTrip(b *testing.B) {
	run := func(b *testing.B, addr string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		one := []byte{'x'}
		times := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			c.Write(one)
			if _, err := io.ReadFull(c, one); err != nil {
				b.Fatal(err)
			}
			times = append(times, time.Since(t0))
		}
		slices.Sort(times)
		b.ReportMetric(float64(times[len(times)/2])/1e3, "p50-µs")
	}
	b.Run("direct", func(b *testing.B) { run(b, testpeer.TCP(b, testpeer.Echo)) })
	b.Run("zero-copy", func(b *testing.B) {
		addr, _ := startRelay(b, "tcp://127.0.0.1:0", Config{Target: mustParse(b, "tcp://"+testpeer.TCP(b, testpeer.Echo))})
		run(b, addr)
	})
	b.Run("inspected", func(b *testing.B) {
		addr, _ := startRelay(b, "tcp://127.0.0.1:0", Config{Target: mustParse(b, "tcp://"+testpeer.TCP(b, testpeer.Echo)), Sink: &countSink{}})
		run(b, addr)
	})
}
