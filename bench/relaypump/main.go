// Command relaypump measures a TCP relay from outside: it serves the far end
// itself (a sink or an echo), connects through the relay under test, and
// prints MB/s for one stream or round-trip percentiles in microseconds.
//
//	relaypump -mode stream -server 127.0.0.1:Q -via 127.0.0.1:P -mib 1024
//	relaypump -mode rtt    -server 127.0.0.1:Q -via 127.0.0.1:P -n 20000
//
// Output is one line of key=value pairs for bench/relay.sh.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"
)

func main() {
	mode := flag.String("mode", "stream", "stream or rtt")
	server := flag.String("server", "127.0.0.1:0", "where the far end listens (the relay's target)")
	via := flag.String("via", "", "the relay's listening address (empty: connect to the server directly)")
	mib := flag.Int("mib", 1024, "stream: MiB to send")
	n := flag.Int("n", 20000, "rtt: round trips")
	flag.Parse()
	ln, err := net.Listen("tcp", *server)
	if err != nil {
		fail(err)
	}
	to := *via
	if to == "" {
		to = ln.Addr().String()
	}
	switch *mode {
	case "stream":
		stream(ln, to, int64(*mib)<<20)
	case "rtt":
		rtt(ln, to, *n)
	default:
		fail(fmt.Errorf("unknown mode %q", *mode))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "relaypump:", err)
	os.Exit(1)
}

func dial(to string) net.Conn {
	var err error
	for range 100 {
		var c net.Conn
		if c, err = net.Dial("tcp", to); err == nil {
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
	fail(err)
	return nil
}

// stream sends size bytes and times until the sink has read them all.
func stream(ln net.Listener, to string, size int64) {
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			fail(err)
		}
		buf := make([]byte, 256<<10)
		var total int64
		for {
			k, err := c.Read(buf)
			total += int64(k)
			if err != nil {
				break
			}
		}
		got <- total
		c.Close()
	}()
	c := dial(to)
	buf := make([]byte, 256<<10)
	t0 := time.Now()
	for left := size; left > 0; {
		k := min(int64(len(buf)), left)
		if _, err := c.Write(buf[:k]); err != nil {
			fail(err)
		}
		left -= k
	}
	c.(*net.TCPConn).CloseWrite()
	total := <-got
	secs := time.Since(t0).Seconds()
	c.Close()
	if total != size {
		fail(fmt.Errorf("sink got %d bytes, want %d", total, size))
	}
	fmt.Printf("mbps=%.0f secs=%.3f\n", float64(size)/1e6/secs, secs)
}

// rtt bounces one byte n times off an echo and prints percentiles.
func rtt(ln net.Listener, to string, n int) {
	go func() {
		c, err := ln.Accept()
		if err != nil {
			fail(err)
		}
		io.Copy(c, c)
		c.Close()
	}()
	c := dial(to)
	c.(*net.TCPConn).SetNoDelay(true)
	b := []byte{'x'}
	times := make([]time.Duration, 0, n)
	for i := range n + 200 {
		t0 := time.Now()
		if _, err := c.Write(b); err != nil {
			fail(err)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			fail(err)
		}
		if i >= 200 { // warm-up
			times = append(times, time.Since(t0))
		}
	}
	slices.Sort(times)
	us := func(q float64) float64 { return float64(times[int(q*float64(len(times)-1))]) / 1e3 }
	fmt.Printf("p50=%.1f p90=%.1f p99=%.1f\n", us(0.5), us(0.9), us(0.99))
}
