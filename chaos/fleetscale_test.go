package chaos

// Issue 12, a fleet at scale: what a simulated device costs (peak RSS per
// device, less the process's own with one device), one simulate process
// running as many devices as its descriptor limit allows, each sending a
// message a second to a `listen -k` sink in another process that counts
// every one, and a fleet larger than the limit, which must say so once and
// end, not hang.

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// scaleScript sends args.n numbered lines, one a second (each device at
// its own phase in the second), then hangs up.
const scaleScript = `
local n = tonumber(args.n)
local c = assert(net.connect(TARGET, { frame = "line" }))
sleep(math.random())
local start = now()
for i = 1, n do
  assert(c:send(device.id .. " " .. i))
  local wait = start + i - now()
  if wait > 0 then sleep(wait) end
end
c:close()
`

type scaleRun struct {
	peak   int64 // peak RSS of the simulate process, bytes
	counts map[int]int
	total  int
	stderr string
}

// runScale runs devices × msgs through a `listen -k --recv-only` sink and
// returns the simulate process's peak RSS and what the sink received, by
// device id.
func runScale(t *testing.T, devices, msgs int, ramp string) scaleRun {
	t.Helper()
	port := e2e.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	sink := e2e.Start(t, "wirecat", "listen", "-k", addr, "--recv-only", "--frame", "line")
	e2e.WaitListen(t, port)
	script := writeFile(t, "scale.lua", scaleScript)
	p := e2e.Start(t, "wirecat", "simulate", script, "--connect", addr, "-n", itoa(devices), "--ramp", ramp, "--arg", "n="+itoa(msgs))
	var r scaleRun
	rampD, _ := time.ParseDuration(ramp)
	deadline := time.Now().Add(time.Duration(msgs)*time.Second + rampD + 60*time.Second)
	for time.Now().Before(deadline) {
		if v := e2e.PeakRSS(p.Pid()); v > r.peak {
			r.peak = v
		}
		select {
		case <-p.Done():
			deadline = time.Time{}
		case <-time.After(100 * time.Millisecond):
		}
	}
	if code := p.Wait(time.Second); code != 0 {
		t.Fatalf("simulate exited %d", code)
	}
	r.stderr = p.Stderr.String()
	// The sink has read every line once it has seen every device hang up;
	// SIGTERM then makes it flush and exit.
	time.Sleep(500 * time.Millisecond)
	sink.Signal(syscall.SIGTERM, 10*time.Second)
	r.counts = map[int]int{}
	f := strings.Fields(sink.Stdout.String())
	for i := 0; i+1 < len(f); i += 2 {
		id, err := strconv.Atoi(f[i])
		if err != nil {
			t.Fatalf("sink received %q", f[i]+" "+f[i+1])
		}
		r.counts[id]++
		r.total++
	}
	return r
}

// check fails unless every device connected and the sink received each of
// its messages.
func (r scaleRun) check(t *testing.T, devices, msgs int) {
	t.Helper()
	want := fmt.Sprintf("%d connections, 0 errors", devices)
	if devices == 1 {
		want = "1 connection, 0 errors"
	}
	if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, ", 0 failed,") {
		t.Fatalf("want every device connected (%q) and none failed:\n%.2000s", want, r.stderr)
	}
	short := 0
	for id := 1; id <= devices; id++ {
		if r.counts[id] != msgs {
			short++
		}
	}
	if r.total != devices*msgs || short != 0 || len(r.counts) != devices {
		t.Fatalf("the sink received %d messages of %d, from %d devices of %d (%d devices not %d each)",
			r.total, devices*msgs, len(r.counts), devices, short, msgs)
	}
}

// TestFleetScaleMemory: peak RSS per device = (peak RSS − peak RSS with one
// device) / devices, all devices started at once (--ramp 0: the start-up's
// garbage and connects all come together). The short run's bound is
// generous (a shared CI machine); the soak's is the 32 KiB at
// 10,000 devices.
func TestFleetScaleMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("RSS figures need a build without -race (its shadow memory is not wirecat's)")
	}
	devices, msgs, bound := 1000, 3, 64.0
	if *soak {
		devices, msgs, bound = 10000, 5, 32
	}
	base := runScale(t, 1, 2, "0s")
	base.check(t, 1, 2)
	r := runScale(t, devices, msgs, "0s")
	r.check(t, devices, msgs)
	perDev := float64(r.peak-base.peak) / 1024 / float64(devices)
	figure(t, "fleet-memory", "%d devices, one message a second each, --ramp 0: peak RSS %d MiB (one device: %.1f MiB), %.1f KiB/device; all %d messages received",
		devices, r.peak>>20, float64(base.peak)/(1<<20), perDev, r.total)
	if perDev > bound {
		t.Errorf("peak RSS %.1f KiB per device, over %.0f KiB", perDev, bound)
	}
}

// TestFleetScaleDescriptors: one simulate process runs as many devices as
// its descriptor limit allows (19,000 of 20,000 in the soak), each sending
// a message a second, against a `listen -k` sink in its own process: every
// device connects and every message arrives.
func TestFleetScaleDescriptors(t *testing.T) {
	devices, msgs, ramp := 2000, 5, "1s"
	if *soak {
		devices, msgs, ramp = 19000, 30, "5s"
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max < uint64(devices+100) {
		t.Skipf("the descriptor limit (%d) is too low for %d devices and their sink", lim.Max, devices)
	}
	start := time.Now()
	r := runScale(t, devices, msgs, ramp)
	r.check(t, devices, msgs)
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("a fleet that fits warned:\n%.2000s", r.stderr)
	}
	figure(t, "fleet-descriptors", "%d devices in one process (descriptor limit %d), %d messages a second for %d s: all connected, all %d messages received by the sink, peak RSS %d MiB, ran %v",
		devices, lim.Cur, devices, msgs, r.total, r.peak>>20, time.Since(start).Round(time.Second))
}

// TestFleetOverDescriptorLimit: a fleet the descriptor limit cannot hold
// says so once, before it starts, naming the limit; the devices past it
// fail with the reason, the others run, and the run ends.
func TestFleetOverDescriptorLimit(t *testing.T) {
	port := e2e.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e2e.Start(t, "wirecat", "listen", "-k", addr, "--recv-only")
	e2e.WaitListen(t, port)
	script := writeFile(t, "scale.lua", scaleScript)
	cmd := exec.Command("sh", "-c", `ulimit -n 128 && exec "$@"`, "sh",
		e2e.Bin, "simulate", script, "--connect", addr, "-n", "300", "--ramp", "0", "--arg", "n=2")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("simulate over the descriptor limit still ran after 30s:\n%.2000s", stderr.String())
	}
	out := stderr.String()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit %d, want 1 (devices failed)", code)
	}
	if n := strings.Count(out, "may open 128 (ulimit -n)"); n != 1 {
		t.Errorf("the limit named %d times, want once:\n%.3000s", n, out)
	}
	if !strings.HasPrefix(out, "wirecat: warning: 300 devices need a descriptor each") {
		t.Errorf("the warning does not come first:\n%.1000s", out)
	}
	if !strings.Contains(out, "too many open files") {
		t.Errorf("no device named the cause:\n%.2000s", out)
	}
	conns := 0
	if i := strings.LastIndex(out, " connections, "); i > 0 {
		f := strings.Fields(out[:i])
		conns, _ = strconv.Atoi(f[len(f)-1])
	}
	if conns < 50 || conns > 128 {
		t.Errorf("%d devices connected under ulimit -n 128, want most of what it allows:\n%.2000s", conns, out)
	}
}

// TestFleetRaisesSoftLimit: a soft descriptor limit under the fleet's needs
// is no bound when the hard one is above them: simulate runs with the hard
// limit (Go's runtime raises the soft one at start), all devices connect,
// and nothing warns.
func TestFleetRaisesSoftLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max < 1000 {
		t.Skipf("the hard descriptor limit (%d) is too low", lim.Max)
	}
	port := e2e.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e2e.Start(t, "wirecat", "listen", "-k", addr, "--recv-only")
	e2e.WaitListen(t, port)
	script := writeFile(t, "scale.lua", scaleScript)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", `ulimit -Sn 64 && exec "$@"`, "sh",
		e2e.Bin, "simulate", script, "--connect", addr, "-n", "300", "--ramp", "0", "--arg", "n=1")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "warning") || !strings.Contains(string(out), "300 connections, 0 errors") {
		t.Fatalf("%v under ulimit -Sn 64 (hard %d):\n%.2000s", err, lim.Max, out)
	}
}
