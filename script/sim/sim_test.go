package sim

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/script"
)

type lineSink struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *lineSink) Emit(e *event.Event) error {
	if e.Kind == event.Data && e.Received() {
		s.mu.Lock()
		s.b.Write(e.Data)
		s.b.WriteByte('\n')
		s.mu.Unlock()
	}
	return nil
}

func (s *lineSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func load(t testing.TB, path string) *script.Program {
	t.Helper()
	p, err := script.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The README's first command: thermo.lua against the built-in sink.
func TestThermoBuiltinSink(t *testing.T) {
	var out lineSink
	var stderr bytes.Buffer
	sum, err := Run(context.Background(), Config{
		Program: load(t, "../../scripts/thermo.lua"), Count: 3, Seed: 1, Frame: "delim:,",
		Args: map[string]string{"interval": "0.01", "readings": "4"}, Sink: &out, Stderr: &stderr,
		Duration: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(out.String())
	if len(got) != 12 {
		t.Fatalf("sink got %d readings: %q (stderr %q)", len(got), got, stderr.String())
	}
	for _, r := range got {
		tp, hum, ok := strings.Cut(r, ":")
		if _, err := strconv.ParseFloat(tp, 64); !ok || err != nil {
			t.Errorf("reading %q is not t:h", r)
		}
		if _, err := strconv.Atoi(hum); err != nil {
			t.Errorf("reading %q is not t:h", r)
		}
	}
	if sum.Devices != 3 || sum.Failed != 0 || sum.MsgsSent != 12 || sum.Conns != 3 {
		t.Errorf("summary %+v", sum)
	}
}

func TestOneDeviceErrorOthersRun(t *testing.T) {
	p, err := script.Compile("dev.lua", []byte(`
		if device.id == 2 then error("device two breaks") end
		sleep(0.05)
		print("ok", device.id)
	`))
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuf
	sum, err := Run(context.Background(), Config{Program: p, Count: 3, Stdout: &stdout, Stderr: &stderr, NoSink: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 1 || len(sum.Errors) != 1 || !strings.Contains(sum.Errors[0], "dev.lua:2: device two breaks") {
		t.Errorf("summary %+v", sum)
	}
	if n := strings.Count(stdout.String(), "ok"); n != 2 {
		t.Errorf("stdout %q", stdout.String())
	}
	if !strings.Contains(stderr.String(), "wirecat: device 2: dev.lua:2: device two breaks\n\tin main chunk") {
		t.Errorf("stderr %q", stderr.String())
	}
}

func TestDurationStopsFleet(t *testing.T) {
	p, _ := script.Compile("spin.lua", []byte(`if device.id == 1 then while true do end else every(0.01, function() end) end`))
	start := time.Now()
	sum, err := Run(context.Background(), Config{Program: p, Count: 2, Duration: 200 * time.Millisecond, NoSink: true})
	if err != nil || sum.Stopped != 2 || time.Since(start) > 2*time.Second {
		t.Fatalf("sum %+v err %v after %v", sum, err, time.Since(start))
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// countingServer accepts every connection and counts bytes; it runs in the
// test process, so its memory is subtracted by measuring it alone.
func countingServer(t testing.TB) (string, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReaderSize(c, 64)
				for {
					if _, err := r.ReadByte(); err != nil {
						return
					}
					n.Add(1)
				}
			}()
		}
	}()
	return ln.Addr().String(), &n
}

// TestScale runs a fleet of thermo boards, 2,000 by default
// (WIRECAT_SCALE=10000 for the target figure), and reports memory per device
// and start-up time.
func TestScale(t *testing.T) {
	n := 2000
	if s := os.Getenv("WIRECAT_SCALE"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	if testing.Short() {
		n = 200
	}
	addr := os.Getenv("WIRECAT_SCALE_TARGET") // an external sink keeps its memory out of ours
	var got *atomic.Int64
	if addr == "" {
		addr, got = countingServer(t)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	p := load(t, "../../scripts/thermo.lua")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var peakHeap, peakSys atomic.Uint64
	go func() {
		for ctx.Err() == nil {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			if s := ms.HeapInuse + ms.StackInuse; s > peakSys.Load() {
				peakSys.Store(s)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	dur := 3 * time.Second
	if n > 5000 {
		dur = 6 * time.Second
	}
	sum, err := Run(ctx, Config{Program: p, Count: n, Duration: dur, Connect: addr, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if sum.Conns != int64(n) || sum.Failed != 0 || sum.Errs != 0 {
		t.Fatalf("summary %+v", sum)
	}
	secs := sum.Elapsed.Seconds()
	if float64(sum.MsgsSent) < float64(n)*(secs-2)*0.5 { // lenient: a shared machine
		t.Errorf("%d devices sent %d messages in %.1fs, want about one a second each", n, sum.MsgsSent, secs)
	}
	if got != nil && got.Load() != sum.BytesSent {
		t.Logf("server counted %d bytes of %d sent (some in flight at the stop)", got.Load(), sum.BytesSent)
	}
	hwm := vmHWM()
	t.Logf("%d devices: start-up %v, all connected after %v, elapsed %v of %v, %d msgs, peak heap+stack %d KiB/device, process peak RSS %d MiB (%d KiB/device, before %d MiB heap)",
		n, sum.StartUp.Round(time.Millisecond), sum.Connected.Round(time.Millisecond), sum.Elapsed.Round(time.Millisecond), dur, sum.MsgsSent, peakSys.Load()/uint64(n)/1024, hwm>>20, hwm/uint64(n)/1024, before.HeapInuse>>20)
	if sum.StartUp > 3*time.Second {
		t.Logf("start-up took %v (over the 3s target; check the machine's load)", sum.StartUp)
	}
}

func vmHWM() uint64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// A stderr line written while the status line shows starts on a blanked
// line (issue 15, defect 5).
func TestStatusLineBlanksBeforeWrites(t *testing.T) {
	var b strings.Builder
	s := &statusLine{w: &b}
	s.Write([]byte("wirecat: before\n"))
	s.draw("1s  10 conns")
	s.Write([]byte("wirecat: device 3: boom\n"))
	s.draw("2s  10 conns")
	s.clear()
	want := "wirecat: before\n\r\033[K1s  10 conns\r\033[Kwirecat: device 3: boom\n\r\033[K2s  10 conns\r\033[K"
	if b.String() != want {
		t.Fatalf("got %q\nwant %q", b.String(), want)
	}
}
