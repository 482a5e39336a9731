// Command connstorm opens many short TCP connections from parallel clients,
// each sending one line, for the listen -k benchmark. Loopback only.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("to", "127.0.0.1:9999", "loopback TCP address")
	total := flag.Int("n", 10000, "connections in all")
	parallel := flag.Int("c", 50, "parallel clients")
	flag.Parse()
	ta, err := net.ResolveTCPAddr("tcp", *addr)
	if err != nil || !ta.IP.IsLoopback() {
		fmt.Fprintln(os.Stderr, "connstorm: want a loopback address:", *addr)
		os.Exit(2)
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(*total) {
					return
				}
				c, err := net.DialTimeout("tcp", *addr, 5*time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				fmt.Fprintf(c, "line %d\n", i)
				c.(*net.TCPConn).CloseWrite()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				var b [64]byte
				c.Read(b[:]) // wait for the server to close
				c.Close()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%d %d %.3f\n", *total, failed.Load(), time.Since(start).Seconds())
}
