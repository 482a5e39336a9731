package chaos

// Issue 9, item 6 (sessions part): show and replay stream a recording of
// any size in bounded memory, and replay starts at once.

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// rssBound is the target for show and replay of a big recording.
// A binary built with the race detector is measured but not held to it
// (its shadow memory is several times the program's), nor to the start
// latency.
const rssBound = 64 << 20

// over reports a figure over its target, in a build where it counts.
func over[T int64 | time.Duration](got, bound T) bool { return got > bound && !raceEnabled }

// bigSession writes a recording of about size bytes: 64 connections at a
// time, each sending 200 messages (printable and binary) to server, then
// closing, the next opening in its place. It returns the path and the
// bytes the client side sent.
func bigSession(t *testing.T, size int64, server string) (string, int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "big.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, `{"wirecat":"session","version":2,"command":"chaos","frame":"raw","start":"2025-03-14T15:09:26Z"}`+"\n")
	text := strings.Repeat("temperature=21.5 humidity=40 ", 7)[:200]
	bin := randomBytes(1000, 7)
	b64 := base64.StdEncoding.EncodeToString(bin)
	const live, per = 64, 200
	sent := make([]int, live+1)
	var total, written int64
	next := uint64(1)
	ids := make([]uint64, live)
	tick := 0
	open := func(slot int) {
		ids[slot] = next
		next++
		n, _ := fmt.Fprintf(w, `{"t":%d.%06d,"ev":"open","conn":%d,"transport":"tcp","role":"client","local":"127.0.0.1:%d","remote":"%s","client":"127.0.0.1:%d","server":"%s"}`+"\n",
			tick/1e6, tick%1e6, ids[slot], 40000+slot, server, 40000+slot, server)
		written += int64(n)
		sent[slot] = 0
	}
	for s := range live {
		open(s)
	}
	for written < size {
		for s := range live {
			tick++
			var n int
			if sent[s]%5 == 4 {
				n, _ = fmt.Fprintf(w, `{"t":%d.%06d,"ev":"data","conn":%d,"from":"client","b64":"%s"}`+"\n", tick/1e6, tick%1e6, ids[s], b64)
				total += int64(len(bin))
			} else {
				n, _ = fmt.Fprintf(w, `{"t":%d.%06d,"ev":"data","conn":%d,"from":"client","text":"%s"}`+"\n", tick/1e6, tick%1e6, ids[s], text)
				total += int64(len(text))
			}
			written += int64(n)
			if sent[s]++; sent[s] == per {
				n, _ = fmt.Fprintf(w, `{"t":%d.%06d,"ev":"close","conn":%d,"by":"client"}`+"\n", tick/1e6, tick%1e6, ids[s])
				written += int64(n)
				open(s)
			}
		}
	}
	for s := range live {
		fmt.Fprintf(w, `{"t":%d.%06d,"ev":"close","conn":%d,"by":"client"}`+"\n", tick/1e6+1, tick%1e6, ids[s])
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Sync() // the test's own writeback must not stall the command measured next
	f.Close()
	return path, total
}

func bigSize() int64 {
	switch {
	case *soak:
		return 1 << 30
	case raceEnabled:
		return 8 << 20
	}
	return 50 << 20
}

// measured runs wirecat to its end and returns its peak RSS and stderr.
func measured(t *testing.T, timeout time.Duration, args ...string) (peak int64, stderr string, took time.Duration) {
	t.Helper()
	return measuredCmd(t, timeout, e2e.Bin, args...)
}

// measuredCmd is measured for any program (prlimit running wirecat).
func measuredCmd(t *testing.T, timeout time.Duration, name string, args ...string) (peak int64, stderr string, took time.Duration) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var errb strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(timeout, func() { cmd.Process.Kill() })
	defer timer.Stop()
	// The high-water mark of the process's own memory (VmHWM), read until it
	// exits: rusage's maxrss would include the test process's own RSS,
	// which Linux carries across the fork and exec.
	var hwm atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if v := e2e.PeakRSS(cmd.Process.Pid); v > hwm.Load() {
				hwm.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	close(stop)
	<-sampled
	took = time.Since(start)
	if err != nil {
		t.Fatalf("wirecat %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return hwm.Load(), errb.String(), took
}

// show of a big recording, in every mode, stays under the RSS target.
func TestShowBigRecording(t *testing.T) {
	path, _ := bigSession(t, bigSize(), "127.0.0.1:9")
	fi, _ := os.Stat(path)
	for _, args := range [][]string{{"-o", "text"}, {"-o", "hex"}, {"-o", "json"}, {"--pcap", filepath.Join(t.TempDir(), "big.pcapng")}} {
		peak, _, took := measured(t, 10*time.Minute, append([]string{"show", path}, args...)...)
		mode := strings.Join(args, " ")
		if args[0] == "--pcap" {
			mode = "--pcap"
		}
		figure(t, "show "+mode+" of a big recording", "%d MiB file in %v, peak RSS %.1f MiB (target < 64)",
			fi.Size()>>20, took.Round(time.Millisecond), float64(peak)/(1<<20))
		if over(peak, rssBound) {
			t.Errorf("show %s: peak RSS %d MiB", args[0], peak>>20)
		}
	}
}

// show of a file with opens and no closes keeps a bounded table and says
// so (the issue: 2 million opens, 983 MB).
func TestShowOpensWithoutCloses(t *testing.T) {
	n := 200_000
	switch {
	case *soak:
		n = 2_000_000
	case raceEnabled:
		n = 50_000
	}
	path := filepath.Join(t.TempDir(), "opens.jsonl")
	f, _ := os.Create(path)
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, `{"wirecat":"session","version":2,"start":"2025-03-14T15:09:26Z"}`+"\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, `{"t":1,"ev":"open","conn":%d,"transport":"tcp","role":"server","local":"127.0.0.1:5000","remote":"127.0.0.1:%d"}`+"\n", i, 1024+i%60000)
	}
	fmt.Fprintf(w, `{"t":2,"ev":"data","conn":%d,"from":"client","text":"last"}`+"\n", n)
	w.Flush()
	f.Close()
	for _, args := range [][]string{{"-o", "text"}, {"--pcap", filepath.Join(t.TempDir(), "o.pcapng")}} {
		peak, stderr, took := measured(t, 10*time.Minute, append([]string{"show", path}, args...)...)
		figure(t, "show "+args[0]+" of opens without closes", "%d opens in %v, peak RSS %.1f MiB (target < 64)", n, took.Round(time.Millisecond), float64(peak)/(1<<20))
		if over(peak, rssBound) {
			t.Errorf("show %s: peak RSS %d MiB", args[0], peak>>20)
		}
		if !strings.Contains(stderr, "more than 32768 connections open at once") {
			t.Errorf("show %s does not say the table is full: %q", args[0], stderr)
		}
	}
}

// countingSink accepts connections and counts what they send, noting when
// the first byte came.
type countingSink struct {
	port  int
	bytes atomic.Int64
	conns atomic.Int64
	once  sync.Once
	first chan time.Time
}

func newCountingSink(t *testing.T) *countingSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &countingSink{port: ln.Addr().(*net.TCPAddr).Port, first: make(chan time.Time, 1)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Minute))
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						s.once.Do(func() { s.first <- time.Now() })
						s.bytes.Add(int64(n))
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return s
}

// replay of a big recording starts sending at once and stays under the RSS
// target, and every byte arrives.
func TestReplayBigRecording(t *testing.T) {
	sink := newCountingSink(t)
	path, total := bigSession(t, bigSize(), "127.0.0.1:"+itoa(sink.port))
	fi, _ := os.Stat(path)
	start := time.Now()
	peak, _, took := measured(t, 10*time.Minute, "replay", path, "--as", "client", "--speed", "max")
	first := (<-sink.first).Sub(start)
	figure(t, "replay of a big recording", "%d MiB file: first message %v after start, done in %v, peak RSS %.1f MiB (targets < 100ms, < 64 MiB)",
		fi.Size()>>20, first.Round(time.Millisecond), took.Round(time.Millisecond), float64(peak)/(1<<20))
	if over(first, 100*time.Millisecond) {
		t.Errorf("first message %v after start", first)
	}
	if over(peak, rssBound) {
		t.Errorf("peak RSS %d MiB", peak>>20)
	}
	e2e.WaitFor(t, 10*time.Second, "every byte at the sink", func() bool { return sink.bytes.Load() == total })
}

// replay of a recording with more simultaneous connections than the
// descriptor limit queues the connections past it (saying so once) instead
// of aborting at the limit (issue 9, item 3: 30,000 connections, aborted
// after 9,669 messages).
func TestReplayManyConnections(t *testing.T) {
	e2e.Need(t, "prlimit")
	n := 5_000
	switch {
	case *soak:
		n = 30_000
	case raceEnabled:
		n = 2_000
	}
	sink := newCountingSink(t)
	server := "127.0.0.1:" + itoa(sink.port)
	path := filepath.Join(t.TempDir(), "many.jsonl")
	f, _ := os.Create(path)
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, `{"wirecat":"session","version":2,"frame":"line","start":"2025-03-14T15:09:26Z"}`+"\n")
	for i := 1; i <= n; i++ { // every connection opens and speaks...
		fmt.Fprintf(w, `{"t":0.%06d,"ev":"open","conn":%d,"transport":"tcp","role":"client","local":"127.0.0.1:1","remote":"%s","server":"%s","client":"127.0.0.1:1"}`+"\n", i, i, server, server)
		fmt.Fprintf(w, `{"t":0.%06d,"ev":"data","conn":%d,"from":"client","text":"hello from %d"}`+"\n", i, i, i)
	}
	for i := 1; i <= n; i++ { // ...and all are open at once until the end
		fmt.Fprintf(w, `{"t":1,"ev":"close","conn":%d,"by":"client"}`+"\n", i)
	}
	w.Flush()
	f.Close()
	_, stderr, took := measuredCmd(t, 5*time.Minute, "prlimit", "--nofile=1024", e2e.Bin, "replay", path, "--as", "client", "--speed", "max")
	e2e.WaitFor(t, 10*time.Second, "every connection at the sink", func() bool { return sink.conns.Load() == int64(n) })
	want := int64(0)
	for i := 1; i <= n; i++ {
		want += int64(len("hello from \n") + len(itoa(i)))
	}
	e2e.WaitFor(t, 10*time.Second, "every byte at the sink", func() bool { return sink.bytes.Load() == want })
	if !strings.Contains(stderr, "the next ones wait for one to close") || strings.Count(stderr, "wirecat:") != 1 {
		t.Errorf("stderr: %s", stderr)
	}
	figure(t, "replay of simultaneous connections", "%d connections at once under prlimit --nofile=1024: all replayed in %v, queued past the limit (%q)",
		n, took.Round(time.Millisecond), strings.TrimSpace(stderr))
}
