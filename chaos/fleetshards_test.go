package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// Issue 12, shards: 4 simulate processes share one fleet (--shard K/4,
// --start-at, the ramp over the whole fleet, devices spread over 8 source
// addresses), each against its own `listen -k` sink. Every device sends
// "ID SEQ" once a second. The sinks see every id of 1..count, the shards'
// summaries add up to the fleet, and the messages flow at one a device a
// second. Full size (-chaos.soak): 4 × 9,000 devices.
func TestFleetShards(t *testing.T) {
	const shards = 4
	perShard, ramp, run := 50, 1*time.Second, 4*time.Second
	if *soak {
		perShard, ramp, run = 9000, 30*time.Second, 90*time.Second
	}
	count := shards * perShard
	script := writeFile(t, "fleet.lua", `FRAME = "line"
local conn = assert(net.connect(TARGET))
local n = 0
while true do
  n = n + 1
  local ok, err = conn:send(device.id .. " " .. n)
  if not ok then error("the sink went away: " .. err) end
  sleep(1)
end`)
	var seen idLines
	seen.ids = make([]atomic.Int32, count+2)
	sinks := make([]string, shards)
	sinkProcs := make([]*e2e.Proc, shards)
	for k := range sinks {
		port := e2e.FreePort(t)
		sinks[k] = "127.0.0.1:" + itoa(port)
		sinkProcs[k] = e2e.StartWith(t, nil, &seen, "wirecat", "listen", "-k", "--frame", "line", "--recv-only", "-q", sinks[k])
		e2e.WaitListen(t, port)
	}
	// The shards are started apart, the way a scheduler starts pods; the
	// fleet starts when the last one surely runs.
	t0 := time.Now().Add(2 * time.Second)
	dir := t.TempDir()
	procs := make([]*e2e.Proc, shards)
	files := make([]string, shards)
	peaks, cpus := make([]atomic.Int64, shards), make([]atomic.Int64, shards)
	for k := range procs {
		files[k] = filepath.Join(dir, fmt.Sprintf("summary-%d.json", k))
		procs[k] = e2e.Start(t, "wirecat", "simulate", script, "--count", itoa(count), "--shard", fmt.Sprintf("%d/%d", k, shards),
			"--start-at", t0.UTC().Format(time.RFC3339Nano), "--ramp", ramp.String(), "--duration", run.String(),
			"--connect", sinks[k], "-s", "127.0.0.2-127.0.0.9", "--summary", files[k])
		go watchPeak(procs[k], &peaks[k], &cpus[k])
		time.Sleep(100 * time.Millisecond)
	}
	// The steady rate: from the end of the ramp (and a second for the
	// last device's first message) to a second before the deadline.
	from, to := t0.Add(ramp+time.Second), t0.Add(run-time.Second)
	time.Sleep(time.Until(from))
	atFrom := seen.lines.Load()
	time.Sleep(time.Until(to))
	rate := float64(seen.lines.Load()-atFrom) / to.Sub(from).Seconds()

	summary := regexp.MustCompile(`shard (\d)/\d: (\d+) devices started in \S+ \(connected after (\S+)\), (\d+) failed, (\d+) stopped at the deadline, ran \S+\nwirecat: sent (\d+) messages`)
	var devices, failed, sent int64
	var connect, rss []string
	var worstRSS int64
	var simCPU, sinkCPU time.Duration
	for _, p := range sinkProcs {
		sinkCPU += cpuTime(p.Pid())
	}
	for k, p := range procs {
		if code := p.Wait(run + 30*time.Second); code != 0 {
			t.Errorf("shard %d exited %d; its errors: %v", k, code, tally(p.Stderr.String()))
		}
		m := summary.FindStringSubmatch(p.Stderr.String())
		if m == nil || m[1] != itoa(k) {
			t.Fatalf("shard %d's summary: %.2000q", k, p.Stderr)
		}
		d, _ := strconv.ParseInt(m[2], 10, 64)
		f, _ := strconv.ParseInt(m[4], 10, 64)
		s, _ := strconv.ParseInt(m[6], 10, 64)
		devices, failed, sent = devices+d, failed+f, sent+s
		connect = append(connect, m[3])
		rss = append(rss, fmt.Sprintf("%.0f MiB", mib(peaks[k].Load())))
		worstRSS = max(worstRSS, peaks[k].Load())
		simCPU += time.Duration(cpus[k].Load())
	}
	// What the devices sent is read by now, or soon: the sinks stay up.
	e2e.WaitFor(t, 10*time.Second, "the sinks to read every message", func() bool { return seen.lines.Load() >= sent })
	missing, twice := 0, 0
	for id := 1; id <= count; id++ {
		switch seen.ids[id].Load() {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	// The shards' summaries, merged: the fleet's own figures.
	out, errOut, code := e2e.Run(t, "", 30*time.Second, append([]string{"summary", "-o", "json"}, files...)...)
	if code != 0 {
		t.Fatalf("wirecat summary: exit %d: %s", code, errOut)
	}
	var merged struct {
		Elapsed  float64
		Shards   []string
		Counters map[string]int64
	}
	if err := json.Unmarshal([]byte(out), &merged); err != nil {
		t.Fatalf("merged summary: %v", err)
	}
	text, _, _ := e2e.Run(t, "", 30*time.Second, append([]string{"summary"}, files...)...)
	connectLine := regexp.MustCompile(`(?m)^\s*connect\s+\d+\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)`).FindStringSubmatch(text)
	if connectLine == nil {
		t.Fatalf("no connect timing in the merged summary:\n%s", text)
	}
	figure(t, "fleet in shards, merged", "%d shards: %d devices started, %d connected, %d messages sent (%.0f/s over %.0fs), connect p50 %s p90 %s p99 %s max %s",
		len(merged.Shards), merged.Counters["devices.started"], merged.Counters["devices.connected"], merged.Counters["msgs.sent"],
		float64(merged.Counters["msgs.sent"])/merged.Elapsed, merged.Elapsed, connectLine[1], connectLine[2], connectLine[3], connectLine[4])
	if merged.Counters["devices.started"] != int64(count) || merged.Counters["msgs.sent"] != sent || len(merged.Shards) != shards {
		t.Errorf("the merged summary: %d shards, %v; want %d devices and the %d messages the shards said", len(merged.Shards), merged.Counters, count, sent)
	}
	figure(t, "fleet in shards", "%d shards × %d devices: %d started, %d failed; connected after %v; %.0f messages/s steady (%d devices at 1/s); peak RSS per shard %v (%.1f KiB a device); CPU %.1fs in the shards, %.1fs in the sinks (%.0f µs a message, both sides)",
		shards, perShard, devices, failed, connect, rate, count, rss, float64(worstRSS)/1024/float64(perShard),
		simCPU.Seconds(), sinkCPU.Seconds(), float64((simCPU+sinkCPU).Microseconds())/float64(max(sent, 1)))
	if devices != int64(count) || failed != 0 {
		t.Errorf("the shards started %d devices with %d failed, want %d and 0", devices, failed, count)
	}
	if missing > 0 || twice > 0 || seen.bad.Load() > 0 {
		t.Errorf("at the sinks: %d device ids never seen, %d seen starting twice, %d lines not ID SEQ", missing, twice, seen.bad.Load())
	}
	if got := seen.lines.Load(); got != sent {
		t.Errorf("the sinks read %d messages, the shards sent %d", got, sent)
	}
	if !raceEnabled && rate < 0.9*float64(count) {
		t.Errorf("%.0f messages/s, want about %d (one a device a second)", rate, count)
	}
}

// tally counts a process's error lines by kind (numbers blanked), most
// frequent first, at most 5.
func tally(stderr string) []string {
	digits := regexp.MustCompile(`[0-9]+`)
	n := map[string]int{}
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "wirecat: device ") {
			n[digits.ReplaceAllString(l, "#")]++
		}
	}
	kinds := make([]string, 0, len(n))
	for l := range n {
		kinds = append(kinds, l)
	}
	sort.Slice(kinds, func(i, j int) bool { return n[kinds[i]] > n[kinds[j]] })
	var out []string
	for _, l := range kinds[:min(len(kinds), 5)] {
		out = append(out, fmt.Sprintf("%d × %q", n[l], l))
	}
	return out
}

// watchPeak keeps the peak RSS and the CPU time of p until it exits.
func watchPeak(p *e2e.Proc, peak, cpu *atomic.Int64) {
	for {
		select {
		case <-p.Done():
			return
		case <-time.After(200 * time.Millisecond):
			if v := e2e.PeakRSS(p.Pid()); v > 0 {
				peak.Store(v)
			}
			if v := cpuTime(p.Pid()); v > 0 {
				cpu.Store(int64(v))
			}
		}
	}
}

// cpuTime is the user and system time process pid has used (0 without
// /proc). /proc/PID/stat counts in clock ticks, 100 a second on Linux.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // state is f[0]; utime and stime are fields 14 and 15
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// idLines reads what the sinks print, "ID SEQ" a line: it counts the
// lines and, for each id, how many times its first message (SEQ 1) came.
type idLines struct {
	mu    sync.Mutex
	part  []byte
	lines atomic.Int64
	bad   atomic.Int64
	ids   []atomic.Int32
}

var _ io.Writer = (*idLines)(nil)

func (s *idLines) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf := append(s.part, p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		s.line(buf[:i])
		buf = buf[i+1:]
	}
	s.part = append(s.part[:0], buf...)
	return len(p), nil
}

func (s *idLines) line(l []byte) {
	s.lines.Add(1)
	id, seq, ok := bytes.Cut(l, []byte(" "))
	n, err := strconv.Atoi(string(id))
	if !ok || err != nil || n < 1 || n >= len(s.ids) {
		s.bad.Add(1)
		return
	}
	if string(seq) == "1" {
		s.ids[n].Add(1)
	}
}
