package chaos

// Issue 12, the cost of metrics: a fleet sending one message a second per
// device to a `wirecat listen -k` sink, measured with and without the
// metrics a user asks for (the script counting and timing each message,
// --report every second, --summary, --threshold). The CPU of the simulate
// process is read from /proc (utime + stime, what getrusage gives) over the
// same window of steady sending in each run, after every device connected.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// cpuTicks is the process's user + system CPU so far, in clock ticks
// (1/100 s on Linux).
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name (in parentheses, which may hold spaces).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

const fleetDevice = `
local c = assert(net.connect(TARGET))
sleep(math.random()) -- the devices' sends spread over the second
every(1, function()
  assert(c:send("reading 21.5\n"))
  %s
end)
`

// fleetCPU runs devices against sink for ramp + settle + window and
// returns the CPU seconds the simulate process used in the window.
func fleetCPU(t *testing.T, sink string, devices int, ramp, window time.Duration, withMetrics bool) float64 {
	t.Helper()
	dir := t.TempDir()
	extra := ""
	var flags []string
	if withMetrics {
		extra = `metrics.count("readings"); metrics.observe("sensor.read", 0.001 * math.random())`
		flags = []string{"--report", "1s", "--report-file", filepath.Join(dir, "reports.jsonl"),
			"--summary", filepath.Join(dir, "run.json"), "--threshold", "errors == 0", "--threshold", "connect.p99 < 10s"}
	}
	script := writeFile(t, "fleet.lua", fmt.Sprintf(fleetDevice, extra))
	settle := 2 * time.Second
	total := ramp + settle + window + time.Second
	args := append([]string{"simulate", script, "-n", itoa(devices), "--ramp", ramp.String(),
		"--duration", total.String(), "--connect", sink}, flags...)
	p := e2e.StartWith(t, nil, io.Discard, "wirecat", args...)
	time.Sleep(ramp + settle)
	before := cpuTicks(t, p.Pid())
	time.Sleep(window)
	after := cpuTicks(t, p.Pid())
	if code := p.Wait(total + 60*time.Second); code != 0 {
		t.Fatalf("simulate exited %d: %s", code, p.Stderr)
	}
	if !strings.Contains(p.Stderr.String(), fmt.Sprintf("%d devices started", devices)) ||
		!strings.Contains(p.Stderr.String(), ", 0 errors") {
		t.Fatalf("the fleet did not run cleanly:\n%s", p.Stderr)
	}
	if withMetrics && !strings.Contains(p.Stderr.String(), "threshold errors == 0: met (0)") {
		t.Fatalf("no verdict:\n%s", p.Stderr)
	}
	return float64(after-before) / 100
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TestFleetMetricsCost: the metrics a user asks for cost at most 5% of the
// fleet's CPU at 10,000 devices (-chaos.soak). The short version, 1,000
// devices once each way, only guards against a gross regression (a report
// or a per-message path gone expensive): on a shared 2-core machine its
// noise is larger than 5%.
func TestFleetMetricsCost(t *testing.T) {
	if raceEnabled {
		t.Skip("CPU figures mean nothing under -race")
	}
	devices, ramp, window, pairs, limit := 1000, time.Second, 4*time.Second, 1, 0.5
	if *soak {
		devices, ramp, window, pairs, limit = 10000, 5*time.Second, 15*time.Second, 3, 0.05
	}
	port := e2e.FreePort(t)
	sink := fmt.Sprintf("127.0.0.1:%d", port)
	s := e2e.StartWith(t, nil, io.Discard, "wirecat", "listen", "-k", "--recv-only", sink)
	e2e.WaitListen(t, port)
	var without, with []float64
	for range pairs { // alternated, so a neighbour's load falls on both
		without = append(without, fleetCPU(t, sink, devices, ramp, window, false))
		with = append(with, fleetCPU(t, sink, devices, ramp, window, true))
	}
	base, full := median(without), median(with)
	cost := (full - base) / base
	figure(t, "metrics CPU cost", "%+.1f%% of the fleet's CPU (%d devices, one message a second each; "+
		"%.2f s CPU without, %.2f s with, median of %d runs each over %v of steady sending; target ≤ 5%%)",
		100*cost, devices, base, full, pairs, window)
	t.Logf("without: %v; with: %v", without, with)
	if base <= 0 {
		t.Fatalf("no CPU measured without metrics: %v", without)
	}
	if cost > limit {
		t.Errorf("the metrics cost %.1f%% of the fleet's CPU, over %.0f%%", 100*cost, 100*limit)
	}
	select {
	case <-s.Done():
		t.Fatalf("the sink exited: %s", s.Stderr)
	default:
	}
}
