package chaos

// Review of issue 9 item 2: a recording written to a FIFO that nobody reads
// blocks the session writer (and, behind its lock, every connection and
// the recording's close). A signal must still end the process within a
// second: the exit hooks that close the recording get a bounded wait.

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

func TestSignalWithRecordingStuckOnFIFO(t *testing.T) {
	for _, tc := range []struct {
		sig    syscall.Signal
		second bool // a second signal 100ms after the first: no wait for the hooks
	}{{syscall.SIGTERM, false}, {syscall.SIGINT, false}, {syscall.SIGTERM, true}} {
		sig, name := tc.sig, sigName(tc.sig)
		if tc.second {
			name += " twice"
		}
		t.Run(name, func(t *testing.T) {
			fifo := filepath.Join(t.TempDir(), "rec.jsonl")
			if err := unix.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			// Open for reading and never read: the writer's open succeeds,
			// its writes block once the pipe's buffer is full.
			rd, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			p := e2e.StartWith(t, strings.NewReader(""), io.Discard, "wirecat", "connect", flood(t), "--record", fifo)
			// The pipe holds 64 KiB in pages: once more than half of it
			// waits and the count stops moving, the writer is blocked, and
			// the connection behind it.
			last, still := -1, 0
			e2e.WaitFor(t, 10*time.Second, "the FIFO to fill", func() bool {
				time.Sleep(50 * time.Millisecond)
				n, err := unix.IoctlGetInt(int(rd.Fd()), unix.TIOCINQ) // FIONREAD: bytes waiting in the pipe
				if err != nil || n != last {
					last, still = n, 0
					return false
				}
				still++
				return n >= 32<<10 && still >= 4
			})
			limit := time.Second
			if tc.second {
				p.Cmd.Process.Signal(sig)
				time.Sleep(100 * time.Millisecond)
				limit = 300 * time.Millisecond
			}
			took := p.Signal(sig, limit)
			figure(t, "recording stuck on a FIFO: "+name+" to exit", "%v", took.Round(time.Millisecond))
			if code, want := p.Cmd.ProcessState.ExitCode(), 128+int(sig); code != want {
				t.Errorf("exit code %d after %s, want %d", code, sigName(sig), want)
			}
		})
	}
}
