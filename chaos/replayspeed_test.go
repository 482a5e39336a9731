package chaos

// Review fix: a client replay at the recorded speed (the default) read the
// whole recording ahead of time when it holds many short connections: each
// connection's first message was queued long before it was due (221 MB
// RSS within 3 s for 10,000 connections of one 20 KB message, 50 ms apart).

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

func TestReplayRecordedSpeedReadsAheadLittle(t *testing.T) {
	n := 4_000
	if *soak {
		n = 10_000
	}
	sink := newCountingSink(t)
	server := "127.0.0.1:" + itoa(sink.port)
	path := filepath.Join(t.TempDir(), "spaced.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, `{"wirecat":"session","version":2,"frame":"raw","start":"2025-03-14T15:09:26Z"}`+"\n")
	msg := strings.Repeat("0123456789abcdef", 20<<10/16) // 20 KB
	for i := 1; i <= n; i++ {
		t0 := time.Duration(i) * 50 * time.Millisecond
		at := func(d time.Duration) string { return fmt.Sprintf("%.6f", (t0 + d).Seconds()) }
		fmt.Fprintf(w, `{"t":%s,"ev":"open","conn":%d,"transport":"tcp","role":"client","local":"127.0.0.1:1","remote":"%s","server":"%s","client":"127.0.0.1:1"}`+"\n", at(0), i, server, server)
		fmt.Fprintf(w, `{"t":%s,"ev":"data","conn":%d,"from":"client","text":"%s"}`+"\n", at(time.Millisecond), i, msg)
		fmt.Fprintf(w, `{"t":%s,"ev":"close","conn":%d,"by":"client"}`+"\n", at(2*time.Millisecond), i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Sync()
	f.Close()
	fi, _ := os.Stat(path)

	p := e2e.Start(t, "wirecat", "replay", path, "--as", "client")
	var peak int64
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if v := e2e.PeakRSS(p.Pid()); v > peak {
			peak = v
		}
		select {
		case <-p.Done():
			t.Fatalf("replay ended early: %s", p.Stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if v := e2e.PeakRSS(p.Pid()); v > peak {
		peak = v
	}
	got := sink.conns.Load()
	p.Signal(syscall.SIGINT, time.Second)
	figure(t, "replay at recorded speed", "%d MiB file of %d connections 50 ms apart: peak RSS %.1f MiB in the first 3 s, %d connections played (target < 64 MiB)",
		fi.Size()>>20, n, float64(peak)/(1<<20), got)
	if over(peak, rssBound) {
		t.Errorf("peak RSS %.1f MiB in the first 3 s, want under %d MiB", float64(peak)/(1<<20), rssBound>>20)
	}
	if got < 20 || got > 100 { // about 60 are due in 3 s
		t.Errorf("%d connections played in 3 s, want about 60", got)
	}
}

// Review fix: the bytes held for connections waiting for a descriptor
// drifted negative, so the bound on them never fired. Under a low
// descriptor limit, 200 connections open at once with 300 KB each must stop
// at the bound with what to do, not hold the recording.
func TestReplayWaitingBound(t *testing.T) {
	e2e.Need(t, "prlimit")
	sink := newCountingSink(t)
	server := "127.0.0.1:" + itoa(sink.port)
	path := filepath.Join(t.TempDir(), "waiting.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, `{"wirecat":"session","version":2,"frame":"raw","start":"2025-03-14T15:09:26Z"}`+"\n")
	msg := strings.Repeat("x", 300_000)
	const n = 200
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, `{"t":0.%06d,"ev":"open","conn":%d,"transport":"tcp","role":"client","local":"127.0.0.1:1","remote":"%s","server":"%s","client":"127.0.0.1:1"}`+"\n", i, i, server, server)
		fmt.Fprintf(w, `{"t":0.%06d,"ev":"data","conn":%d,"from":"client","text":"%s"}`+"\n", i, i, msg)
	}
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, `{"t":5,"ev":"close","conn":%d,"by":"client"}`+"\n", i)
	}
	w.Flush()
	f.Close()
	p := e2e.StartWith(t, strings.NewReader(""), nil, "prlimit", "--nofile=80", e2e.Bin, "replay", path, "--as", "client", "--speed", "max")
	code := p.Wait(20 * time.Second)
	stderr := p.Stderr.String()
	if code != 1 || !strings.Contains(stderr, "the messages of those waiting passed 32 MiB") || !strings.Contains(stderr, "raise the descriptor limit") {
		t.Fatalf("exit %d, stderr: %s", code, stderr)
	}
}
