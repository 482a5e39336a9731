package chaos

// Issue 10's targets, through ptys: bytes per second and one-byte round
// trips of a pty relayed to TCP, wirecat beside socat doing the same relay
// (`wirecat relay pty:… tcp://…` and `socat pty,raw,echo=0 tcp:…`), and
// 100 simulated devices each behind its own pty answering their host.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
	"github.com/wirecat-dev/wirecat/link"
)

// ptyRelay starts a relay from a pty at dir/name to target with wirecat or
// socat, and returns the pty path once it is there.
func ptyRelay(t *testing.T, tool, dir, target string) string {
	t.Helper()
	tty := filepath.Join(dir, tool)
	if tool == "socat" {
		e2e.Need(t, "socat")
		e2e.Start(t, "socat", "pty,raw,echo=0,link="+tty, "tcp:"+target)
	} else {
		e2e.Start(t, "wirecat", "relay", "pty:"+tty, "tcp://"+target)
	}
	e2e.WaitFor(t, 10*time.Second, "the pty of "+tool, func() bool {
		l, err := os.Readlink(tty)
		return err == nil && strings.HasPrefix(l, "/dev/pts/")
	})
	return tty
}

// openTTY opens a pty's slave side as a host program would.
func openTTY(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestPTYThroughput writes size bytes into the pty; a TCP sink behind the
// relay checks every byte and the time they took.
func TestPTYThroughput(t *testing.T) {
	size := 16 << 20
	if *soak {
		size = 256 << 20
	}
	pattern := make([]byte, 64<<10)
	for i := range pattern {
		pattern[i] = byte(i * 7)
	}
	for _, tool := range []string{"wirecat", "socat"} {
		t.Run(tool, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan error, 1)
			var done time.Time
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- err
					return
				}
				defer c.Close()
				buf := make([]byte, len(pattern))
				off := 0
				for n := 0; n < size; {
					k, err := c.Read(buf[:min(len(buf), size-n, len(pattern)-off)])
					if err != nil {
						got <- fmt.Errorf("after %d bytes: %w", n, err)
						return
					}
					if !bytes.Equal(buf[:k], pattern[off:off+k]) {
						got <- fmt.Errorf("bytes %d-%d differ", n, n+k)
						return
					}
					n, off = n+k, (off+k)%len(pattern)
				}
				done = time.Now()
				got <- nil
			}()
			tty := openTTY(t, ptyRelay(t, tool, t.TempDir(), ln.Addr().String()))
			time.Sleep(100 * time.Millisecond) // the relay sees its opener and dials
			start := time.Now()
			go func() {
				for n := 0; n < size; n += len(pattern) {
					if _, err := tty.Write(pattern[:min(len(pattern), size-n)]); err != nil {
						return
					}
				}
			}()
			select {
			case err := <-got:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the sink did not get every byte within 60s")
			}
			mbs := float64(size) / done.Sub(start).Seconds() / 1e6
			figure(t, "pty relay throughput "+tool, "%.1f MB/s (%d MiB)", mbs, size>>20)
			if *soak && tool == "wirecat" && mbs < 20 && !raceEnabled {
				t.Errorf("%.1f MB/s, want at least 20", mbs)
			}
		})
	}
}

// TestPTYRoundTrip: one byte into the pty, through the relay to a TCP echo
// server and back out of the pty.
func TestPTYRoundTrip(t *testing.T) {
	n := 300
	if *soak {
		n = 5000
	}
	for _, tool := range []string{"wirecat", "socat"} {
		t.Run(tool, func(t *testing.T) {
			tty := openTTY(t, ptyRelay(t, tool, t.TempDir(), echoServer(t)))
			time.Sleep(100 * time.Millisecond)
			var l lat
			b := []byte{0}
			for i := 0; i < n; i++ {
				b[0] = byte(i)
				start := time.Now()
				if _, err := tty.Write(b); err != nil {
					t.Fatal(err)
				}
				got := []byte{0xff}
				if _, err := io.ReadFull(tty, got); err != nil || got[0] != byte(i) {
					t.Fatalf("round trip %d: %v, %v", i, got, err)
				}
				l.add(time.Since(start))
			}
			p50, _, _ := l.pct(50)
			p99, worst, _ := l.pct(99)
			figure(t, "pty relay one-byte round trip "+tool, "p50 %v, p99 %v, max %v (%d trips)", p50.Round(time.Microsecond), p99.Round(time.Microsecond), worst.Round(time.Microsecond), n)
			if *soak && tool == "wirecat" && p50 > 100*time.Microsecond && !raceEnabled {
				t.Errorf("p50 %v, want under 100µs", p50)
			}
		})
	}
}

// TestPTYFleet: simulated AT modems each behind its own pty
// (--listen pty:DIR/ttyV%d); a host per pty sends AT and times the OK.
// The same hosts then time plain Go answering the same number of ptys
// (link's pty listener, no Lua, no device scheduler): the floor this
// machine's kernel and load set, logged beside wirecat's figure.
func TestPTYFleet(t *testing.T) {
	count, rounds := 20, 20
	if *soak {
		count, rounds = 100, 100
	}
	dir := t.TempDir()
	sim := e2e.Start(t, "wirecat", "simulate", "../scripts/at-modem.lua", "--count", fmt.Sprint(count), "--listen", "pty:"+filepath.Join(dir, "ttyV%d"))
	paths := make([]string, count)
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprintf("ttyV%d", i+1))
	}
	waitPTYs(t, paths)
	l := hostRounds(t, paths, rounds)
	p50, _, _ := l.pct(50)
	p99, worst, n := l.pct(99)
	figure(t, "pty fleet answer time", "%d devices: p50 %v, p99 %v, max %v (%d answers)", count, p50.Round(time.Microsecond), p99.Round(time.Microsecond), worst.Round(time.Microsecond), n)
	sim.Signal(syscall.SIGTERM, time.Second)
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left behind", p)
			break
		}
	}

	floor := ptyFloor(t, count, rounds)
	f50, _, _ := floor.pct(50)
	f99, fworst, _ := floor.pct(99)
	figure(t, "pty fleet floor (plain Go answering)", "%d ptys: p50 %v, p99 %v, max %v", count, f50.Round(time.Microsecond), f99.Round(time.Microsecond), fworst.Round(time.Microsecond))
	if *soak && p99 > 10*time.Millisecond && !raceEnabled {
		t.Errorf("p99 %v, want under 10ms (plain Go answering as many ptys on this machine now: p99 %v)", p99, f99)
	}
}

func waitPTYs(t *testing.T, paths []string) {
	t.Helper()
	e2e.WaitFor(t, 20*time.Second, "every pty", func() bool {
		for _, p := range paths {
			if _, err := os.Readlink(p); err != nil {
				return false
			}
		}
		return true
	})
}

// hostRounds opens each pty as a host program would and times rounds of
// AT → OK on each, the hosts running at once.
func hostRounds(t *testing.T, paths []string, rounds int) *lat {
	var l lat
	var wg sync.WaitGroup
	errs := make(chan error, len(paths))
	for i, p := range paths {
		tty := openTTY(t, p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 16)
			// Every device sees its host, then the hosts start spread over
			// 10 ms, as independent programs would, not in lockstep.
			time.Sleep(100*time.Millisecond + time.Duration(i)*10*time.Millisecond/time.Duration(len(paths)))
			for r := 0; r < rounds; r++ {
				start := time.Now()
				if _, err := tty.Write([]byte("AT\r")); err != nil {
					errs <- err
					return
				}
				got := ""
				tty.SetReadDeadline(time.Now().Add(5 * time.Second))
				for !strings.HasSuffix(got, "OK\r\n") {
					k, err := tty.Read(buf)
					if err != nil {
						errs <- fmt.Errorf("%s: after %q: %w", tty.Name(), got, err)
						return
					}
					got += string(buf[:k])
				}
				l.add(time.Since(start))
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return &l
}

// ptyFloor runs hostRounds against count ptys that plain Go answers.
func ptyFloor(t *testing.T, count, rounds int) *lat {
	dir := t.TempDir()
	paths := make([]string, count)
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprintf("ttyF%d", i+1))
		a, err := link.Parse("pty:"+paths[i], false)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := link.Listen(t.Context(), a, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			b := make([]byte, 64)
			for {
				n, err := c.Read(b)
				if err != nil {
					return
				}
				for range bytes.Count(b[:n], []byte("\r")) {
					c.Write([]byte("OK\r\n"))
				}
			}
		}()
	}
	waitPTYs(t, paths)
	return hostRounds(t, paths, rounds)
}

// TestPTYOpenerChurn: host programs opening a `listen -k pty:` tty, writing
// and closing it in a tight loop neither leak descriptors nor lose a
// session's bytes, and a signal still ends the listener within a second.
func TestPTYOpenerChurn(t *testing.T) {
	n := 100
	if *soak {
		n = 2000
	}
	tty := filepath.Join(t.TempDir(), "ttyChurn")
	var out bytes.Buffer
	var mu sync.Mutex
	wc := e2e.StartWith(t, nil, writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(b) }), "wirecat", "listen", "-k", "pty:"+tty)
	e2e.WaitFor(t, 10*time.Second, "the pty", func() bool { _, err := os.Readlink(tty); return err == nil })
	fds := e2e.FDs(wc.Pid())
	for i := 0; i < n; i++ {
		f := openTTY(t, tty)
		fmt.Fprintf(f, "%d\n", i)
		// Closing at once may leave the line unread: the next opener's
		// session starts after the listener saw the close. Wait for it.
		want := fmt.Sprintf("%d\n", i)
		e2e.WaitFor(t, 5*time.Second, "line "+want, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return strings.HasSuffix(out.String(), want)
		})
		f.Close()
	}
	time.Sleep(100 * time.Millisecond)
	if got := e2e.FDs(wc.Pid()); got > fds+2 {
		t.Errorf("%d descriptors after %d openers, %d before", got, n, fds)
	}
	figure(t, "pty opener churn", "%d openers, descriptors %d → %d", n, fds, e2e.FDs(wc.Pid()))
	if d := wc.Signal(syscall.SIGTERM, time.Second); d > time.Second {
		t.Errorf("took %v to exit", d)
	}
	if _, err := os.Lstat(tty); err == nil {
		t.Error("symlink left behind")
	}
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(b []byte) (int, error) { return w(b) }
