package chaos

// Issue 9 item 2, a stalled view: a stdout that stops draining (a paused
// pager, a pipe nobody reads) must not hold up a relay's traffic nor its
// recording, and must not keep a signal from ending the process.

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// stuckStdout is a pipe nobody reads: the process's stdout fills its 64 KiB
// and every later write blocks, as under a paused `less`.
func stuckStdout(t *testing.T) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return w
}

// sinkServer accepts one connection at a time and counts what arrives;
// got receives each connection's byte count when it closes.
func sinkServer(t *testing.T) (addr string, got <-chan int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan int64, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// Only the test's own connections count: anything else on
				// the machine may connect to a loopback port (a port scan).
				head := make([]byte, len(pushToken))
				if _, err := io.ReadFull(c, head); err != nil || string(head) != pushToken {
					return
				}
				n, _ := io.Copy(io.Discard, c)
				ch <- n
			}()
		}
	}()
	return ln.Addr().String(), ch
}

// pushToken opens every connection push makes, so that sinkServer counts
// those and no others.
const pushToken = "wirecat-chaos-push-0123456789"

// push sends size bytes through the relay at addr and returns how long
// it took until the target had them all.
func push(t *testing.T, addr string, got <-chan int64, size int64) time.Duration {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Every byte value, CR and LF included, so the text view escapes.
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	// Each chunk ends a line, so a line framing has no unterminated tail
	// (what a relay does with one is issue 9 item 1, tested elsewhere).
	chunk[len(chunk)-1] = '\n'

	begin := time.Now()
	c.SetDeadline(begin.Add(60 * time.Second))
	if _, err := io.WriteString(c, pushToken); err != nil {
		t.Fatal(err)
	}
	for sent := int64(0); sent < size; {
		n := min(int64(len(chunk)), size-sent)
		if _, err := c.Write(chunk[:n]); err != nil {
			t.Fatalf("after %d bytes: %v", sent, err)
		}
		sent += n
	}
	c.(*net.TCPConn).CloseWrite()
	select {
	case n := <-got:
		if n != size {
			t.Fatalf("the target got %d bytes, want %d (after %v)", n, size, time.Since(begin))
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the target did not get %d bytes within 60s", size)
	}
	return time.Since(begin)
}

// bestOf pushes size bytes n times and returns the fastest.
func bestOf(t *testing.T, n int, addr string, got <-chan int64, size int64) time.Duration {
	best := time.Duration(1<<63 - 1)
	for range n {
		best = min(best, push(t, addr, got, size))
	}
	return best
}

func mibps(size int64, d time.Duration) float64 { return float64(size) / (1 << 20) / d.Seconds() }

// relayThrough starts a relay to target with extra flags and stdout, and
// returns it with its listening address.
func relayThrough(t *testing.T, target string, stdout io.Writer, extra ...string) (*e2e.Proc, string) {
	t.Helper()
	port := e2e.FreePort(t)
	args := append([]string{"relay", fmt.Sprintf("127.0.0.1:%d", port), target}, extra...)
	p := e2e.StartWith(t, nil, stdout, "wirecat", args...)
	e2e.WaitListen(t, port)
	return p, fmt.Sprintf("127.0.0.1:%d", port)
}

// A relay whose -o view nobody reads moves its traffic at (nearly) the
// speed of an unviewed relay, says how many view lines it dropped, and
// still ends at once on SIGTERM with its recording valid.
func TestStallRelayView(t *testing.T) {
	size, runs := int64(64<<20), 3
	switch {
	case *soak:
		size, runs = 100<<20, 5
	case raceEnabled:
		size = 16 << 20 // the race detector slows wirecat's own copying, not the kernel's splice
	}
	target, got := sinkServer(t)
	cases := []struct {
		name  string
		frame []string // the same framing for the viewed relay and its bar
		modes []string
	}{
		{"raw", nil, []string{"text", "hex", "json"}},
		// Every 256th byte of push's data is LF: 256-byte messages.
		{"line", []string{"--frame", "line"}, []string{"text"}},
	}
	for _, tc := range cases {
		// The unviewed relay (zero-copy where it can) sets the bar.
		plain, addr := relayThrough(t, target, nil, tc.frame...)
		base := bestOf(t, runs, addr, got, size)
		plain.Signal(syscall.SIGTERM, time.Second)
		for _, mode := range tc.modes {
			name := strings.Join(append(append([]string{}, tc.frame...), "-o", mode), " ")
			t.Run(name, func(t *testing.T) {
				p, addr := relayThrough(t, target, stuckStdout(t), append(tc.frame, "-o", mode)...)
				took := bestOf(t, runs, addr, got, size)
				ratio := base.Seconds() / took.Seconds()
				figure(t, "relay "+name+" into a stuck stdout", "%d MiB (best of %d) in %v: %.0f MiB/s, %.0f%% of unviewed (%.0f MiB/s)",
					size>>20, runs, took.Round(time.Millisecond), mibps(size, took), 100*ratio, mibps(size, base))
				// The first drop is reported within a second.
				p.WaitStderr("dropped so far", 3*time.Second)
				exit := p.Signal(syscall.SIGTERM, time.Second)
				figure(t, "relay "+name+" stuck stdout: SIGTERM to exit", "%v", exit.Round(time.Millisecond))
				if code := p.Cmd.ProcessState.ExitCode(); code != 143 {
					t.Errorf("exit code %d after SIGTERM, want 143", code)
				}
				stderr := p.Stderr.String()
				if !strings.Contains(stderr, "dropped in all") {
					t.Errorf("no total of dropped view lines at exit; stderr:\n%s", stderr)
				}
				figure(t, "relay "+name+" dropped", "%s", lastLine(stderr))
				// A wide margin in CI, where the machine is shared; the soak
				// holds the 80%. Under the race detector only the
				// view's own code is slowed: the figure means nothing there.
				want := 0.5
				if *soak {
					want = 0.8
				}
				if ratio < want && !raceEnabled {
					t.Errorf("viewed relay at %.0f%% of the unviewed throughput, want ≥ %.0f%%", 100*ratio, 100*want)
				}
			})
		}
	}
}

// `listen -k --frame line --record f | sleep`: stdout is the data sink, so
// the peers are held back, but the recording keeps what arrived and
// SIGINT/SIGTERM still end the process within a second.
func TestStallListenRecord(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sigName(sig), func(t *testing.T) {
			rec := t.TempDir() + "/listen.jsonl"
			port := e2e.FreePort(t)
			p := e2e.StartWith(t, nil, stuckStdout(t), "wirecat", "listen", "-k", "--recv-only",
				fmt.Sprintf("127.0.0.1:%d", port), "--frame", "line", "--record", rec)
			e2e.WaitListen(t, port)
			// Two peers write until the stuck stdout holds them back.
			line := []byte(strings.Repeat("x", 99) + "\n")
			for range 2 {
				c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				go func() {
					c.SetWriteDeadline(time.Now().Add(10 * time.Second))
					for {
						if _, err := c.Write(line); err != nil {
							return
						}
					}
				}()
			}
			// The recording grows past what stdout took, then stops
			// growing once the peers are held back.
			e2e.WaitFor(t, 10*time.Second, "the recording to pass 1 MiB", func() bool {
				fi, err := os.Stat(rec)
				return err == nil && fi.Size() > 1<<20
			})
			took := p.Signal(sig, time.Second)
			figure(t, "listen -k --record, stuck stdout: "+sigName(sig)+" to exit", "%v", took.Round(time.Millisecond))
			if code, want := p.Cmd.ProcessState.ExitCode(), 128+int(sig); code != want {
				t.Errorf("exit code %d, want %d", code, want)
			}
			showParses(t, rec)
		})
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// A paused pager that resumes: the view drops while stdout is stuck, then
// shows what comes after once it drains again.
func TestStallRelayViewResumes(t *testing.T) {
	target, got := sinkServer(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	p, addr := relayThrough(t, target, w, "-o", "text")
	push(t, addr, got, 8<<20) // far more than the pipe and the view's queue hold
	p.WaitStderr("dropped so far", 3*time.Second)
	// The pager resumes: everything queued drains, then a new message shows.
	var seen e2e.Buffer
	go io.Copy(&seen, r)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e2e.WaitFor(t, 10*time.Second, "the message sent after the pager resumed", func() bool {
		c.Write([]byte("after the pause\n"))
		time.Sleep(50 * time.Millisecond)
		return strings.Contains(seen.String(), "after the pause")
	})
	p.Signal(syscall.SIGINT, time.Second)
	if code := p.Cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code %d after SIGINT, want 130", code)
	}
}

// A second signal ends wirecat at once, without the grace the first one
// gives stdout to drain.
func TestStallSecondSignal(t *testing.T) {
	rec := t.TempDir() + "/twice.jsonl"
	p := e2e.StartWith(t, nil, stuckStdout(t), "wirecat", "connect", "--recv-only", flood(t), "--record", rec)
	waitBlocked(t, rec)
	begin := time.Now()
	p.Cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(20 * time.Millisecond)
	p.Signal(syscall.SIGINT, time.Second)
	took := time.Since(begin)
	figure(t, "stuck stdout, two SIGINTs 20ms apart", "exit %d after %v", p.Cmd.ProcessState.ExitCode(), took.Round(time.Millisecond))
	if code := p.Cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code %d, want 130", code)
	}
	// The first signal alone waits about 300ms for stdout.
	if took > 200*time.Millisecond {
		t.Errorf("exit %v after the first of two signals, want at once", took)
	}
	showParses(t, rec)
}
