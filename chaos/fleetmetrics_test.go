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

// fleet is one simulate process of the cost test.
type fleet struct {
	p           *e2e.Proc
	withMetrics bool
}

// startFleet starts devices against sink for total, with or without the
// metrics a user asks for.
func startFleet(t *testing.T, sink string, devices int, ramp, total time.Duration, withMetrics bool) fleet {
	t.Helper()
	dir := t.TempDir()
	extra := ""
	var flags []string
	if withMetrics {
		// Only the metrics calls: the script's own work is the same both ways.
		extra = `metrics.count("readings"); metrics.observe("sensor.read", 0.0015)`
		flags = []string{"--report", "1s", "--report-file", filepath.Join(dir, "reports.jsonl"),
			"--summary", filepath.Join(dir, "run.json"), "--threshold", "errors == 0", "--threshold", "connect.p99 < 10s"}
	}
	script := writeFile(t, "fleet.lua", fmt.Sprintf(fleetDevice, extra))
	args := append([]string{"simulate", script, "-n", itoa(devices), "--ramp", ramp.String(),
		"--duration", total.String(), "--connect", sink}, flags...)
	return fleet{e2e.StartWith(t, nil, io.Discard, "wirecat", args...), withMetrics}
}

// end waits for the fleet's exit and checks it ran cleanly.
func (f fleet) end(t *testing.T, devices int, limit time.Duration) {
	t.Helper()
	if code := f.p.Wait(limit); code != 0 {
		t.Fatalf("simulate exited %d: %s", code, f.p.Stderr)
	}
	errOut := f.p.Stderr.String()
	if !strings.Contains(errOut, fmt.Sprintf("%d devices started", devices)) || !strings.Contains(errOut, ", 0 errors") {
		t.Fatalf("the fleet did not run cleanly:\n%s", errOut)
	}
	if f.withMetrics && !strings.Contains(errOut, "threshold errors == 0: met (0)") {
		t.Fatalf("no verdict:\n%s", errOut)
	}
}

// fleetPair runs a fleet without and a fleet with metrics at the same
// time, each against its own sink, so a neighbour's load falls on both
// alike, and returns the CPU seconds each used over the same window of
// steady sending, after every device connected.
func fleetPair(t *testing.T, sinks [2]string, devices int, ramp, window time.Duration, withFirst bool) (without, with float64) {
	t.Helper()
	settle := 3 * time.Second
	total := ramp + settle + window + time.Second
	var a, b fleet
	if withFirst { // the order alternates: starting first may be an advantage
		b = startFleet(t, sinks[1], devices, ramp, total, true)
		a = startFleet(t, sinks[0], devices, ramp, total, false)
	} else {
		a = startFleet(t, sinks[0], devices, ramp, total, false)
		b = startFleet(t, sinks[1], devices, ramp, total, true)
	}
	time.Sleep(ramp + settle)
	a0, b0 := cpuTicks(t, a.p.Pid()), cpuTicks(t, b.p.Pid())
	time.Sleep(window)
	a1, b1 := cpuTicks(t, a.p.Pid()), cpuTicks(t, b.p.Pid())
	a.end(t, devices, total+60*time.Second)
	b.end(t, devices, 60*time.Second)
	return float64(a1-a0) / 100, float64(b1-b0) / 100
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
// fleet's CPU at 10,000 devices (-chaos.soak). The short version, one
// pair of 1,000-device fleets, only guards against a gross regression (a
// report or a per-message path gone expensive): at that size a clock tick
// is 3% of the figure.
func TestFleetMetricsCost(t *testing.T) {
	if raceEnabled {
		t.Skip("CPU figures mean nothing under -race")
	}
	devices, ramp, window, pairs, limit := 1000, time.Second, 5*time.Second, 1, 0.5
	if *soak {
		devices, ramp, window, pairs, limit = 10000, 10*time.Second, 15*time.Second, 5, 0.05
	}
	var sinks [2]string
	for i := range sinks {
		port := e2e.FreePort(t)
		sinks[i] = fmt.Sprintf("127.0.0.1:%d", port)
		e2e.StartWith(t, nil, io.Discard, "wirecat", "listen", "-k", "--recv-only", sinks[i])
		e2e.WaitListen(t, port)
	}
	var without, with, costs []float64
	for i := range pairs {
		a, b := fleetPair(t, sinks, devices, ramp, window, i%2 == 1)
		if a <= 0 {
			t.Fatalf("no CPU measured without metrics")
		}
		without, with, costs = append(without, a), append(with, b), append(costs, (b-a)/a)
	}
	cost := median(costs)
	figure(t, "metrics CPU cost", "%+.1f%% of the fleet's CPU (%d devices, one message a second each; "+
		"CPU seconds without %v, with %v, pairs run side by side over %v of steady sending; median of the pairs; target ≤ 5%%)",
		100*cost, devices, without, with, window)
	if cost > limit {
		t.Errorf("the metrics cost %.1f%% of the fleet's CPU, over %.0f%%", 100*cost, 100*limit)
	}
}
