package main

// Issue 2: no goroutine or descriptor leaks across 10,000 connections to
// listen -k, and every line reaches stdout.

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// fdCount counts the open descriptors of process pid.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	n := e2e.FDs(pid)
	if n < 0 {
		t.Skip("no /proc")
	}
	return n
}

// threads reads the Threads line of /proc/pid/status (0 when unreadable);
// safe to call from any goroutine.
func threads(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(rest))
			return n
		}
	}
	return 0
}

func TestListenKeepOpenNoLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 connections: skipped with -short")
	}
	t.Setenv("GOTRACEBACK", "all") // SIGQUIT at the end lists every goroutine
	t.Run("recv-only", func(t *testing.T) { leakRun(t, 10000, "--recv-only") })
	// With stdin open (a terminal, a pipe that has said nothing yet) every
	// peer is subscribed to it, and must be unsubscribed when it leaves.
	t.Run("stdin open", func(t *testing.T) { leakRun(t, 10000) })
	// A process per peer: fewer of them, each with its pipes and reaper.
	t.Run("exec", func(t *testing.T) { leakRun(t, 1000, "--exec", "cat", "-o", "raw") }) // -o: watch what the command hears
}

func leakRun(t *testing.T, total int, args ...string) {
	const parallel = 50
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wc := start(t, "wirecat", append([]string{"listen", "-k", addr, "--frame", "line"}, args...)...)
	waitListen(t, port)
	pid := wc.cmd.Process.Pid
	// Warm up: the first connections start the runtime's pollers and threads.
	for i := 0; i < 20; i++ {
		c := dial(t, addr)
		fmt.Fprintf(c, "warm %d\n", i)
		c.Close()
	}
	wc.waitOutput("warm 19\n", 10*time.Second)
	time.Sleep(100 * time.Millisecond)
	baseFD := fdCount(t, pid)

	begin := time.Now()
	var next, failed atomic.Int64
	var maxThreads atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(total) || time.Since(begin) > 60*time.Second {
					return
				}
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := fmt.Fprintf(c, "line %d\n", i); err != nil {
					failed.Add(1)
				}
				c.Close()
				if i%500 == 0 {
					if n := int64(threads(pid)); n > maxThreads.Load() {
						maxThreads.Store(n)
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d connections failed", n, total)
	}
	waitFor(t, 20*time.Second, "every line on stdout", func() bool {
		return strings.Count(wc.stdout.String(), "line ") >= total
	})
	rate := float64(total) / time.Since(begin).Seconds()
	seen := make([]bool, total)
	for _, line := range strings.Split(wc.stdout.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "line "); ok {
			n, err := strconv.Atoi(rest)
			if err != nil || n < 0 || n >= total || seen[n] {
				t.Fatalf("bad or repeated line %q", line)
			}
			seen[n] = true
		}
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("line %d never reached stdout", i)
		}
	}
	var fds int
	waitFor(t, 10*time.Second, "descriptors back to the baseline", func() bool {
		fds = fdCount(t, pid)
		return fds <= baseFD+2
	})
	if th := maxThreads.Load(); th > 64 {
		t.Fatalf("%d threads at peak: goroutines blocked in system calls pile up", th)
	}
	// Every goroutine left is listed by the dump SIGQUIT prints. A peer's
	// goroutine may still be running its deferred cleanup just after its
	// descriptor closed (slowly, under the race detector): give it a moment.
	time.Sleep(time.Second)
	wc.cmd.Process.Signal(syscall.SIGQUIT)
	wc.wait(10 * time.Second)
	dump := wc.stderr.String()
	var goroutines, pipes int
	for _, g := range strings.Split(dump, "\n\n") {
		if strings.HasPrefix(strings.TrimSpace(g), "goroutine ") {
			goroutines++
			// The one goroutine reading stdin for every peer stays, and so
			// does the main one, accepting.
			if strings.Contains(g, "wirecat/pipe.") && !strings.Contains(g, "pipe.(*Hub).Run") && !strings.Contains(g, "main.main()") {
				pipes++
			}
		}
	}
	if goroutines == 0 || goroutines > 30 || pipes > 0 {
		t.Fatalf("%d goroutines (%d in pipe) after %d connections closed:\n%s", goroutines, pipes, total, dump[:min(len(dump), 8000)])
	}
	t.Logf("%d connections in %v (%.0f/s), fds %d → %d, peak threads %d, %d goroutines left",
		total, time.Since(begin).Round(time.Millisecond), rate, baseFD, fds, maxThreads.Load(), goroutines)
}
