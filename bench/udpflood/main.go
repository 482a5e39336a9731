// Command udpflood sends N datagrams of a given size to a loopback UDP port
// as fast as it can, for the benchmarks. It refuses non-loopback targets.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	addr := flag.String("to", "127.0.0.1:9999", "loopback UDP address")
	n := flag.Int("n", 1000000, "datagrams to send")
	size := flag.Int("size", 64, "payload bytes")
	flag.Parse()
	ua, err := net.ResolveUDPAddr("udp", *addr)
	if err != nil || !ua.IP.IsLoopback() {
		fmt.Fprintln(os.Stderr, "udpflood: want a loopback address:", *addr)
		os.Exit(2)
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		fmt.Fprintln(os.Stderr, "udpflood:", err)
		os.Exit(1)
	}
	buf := make([]byte, *size)
	for i := range buf {
		buf[i] = 'a' + byte(i%26)
	}
	start := time.Now()
	sent := 0
	for ; sent < *n; sent++ {
		if _, err := c.Write(buf); err != nil {
			continue // ECONNREFUSED bursts while the receiver lags: keep count honest
		}
	}
	el := time.Since(start)
	fmt.Printf("%d %.3f\n", sent, el.Seconds())
}
