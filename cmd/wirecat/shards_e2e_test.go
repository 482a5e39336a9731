package main

// Issue 12, shards on a real engine: simulate --shard, --start-at and -s
// lists and ranges, run as processes against a real `listen -k` sink.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reportScript makes each device send one line, "ID COUNT", and hang up.
const reportScript = `FRAME = "line"
local c = assert(net.connect(TARGET))
assert(c:send(device.id .. " " .. device.count))
c:close()
`

// sinkLine is one event of `listen -k -o json`.
type sinkLine struct {
	Event string `json:"event"`
	Conn  int    `json:"conn"`
	Peer  string `json:"peer"`
	Text  string `json:"text"`
}

// sinkReports reads what a `listen -k -o json` sink received: each
// device's "ID COUNT" line with the address it came from.
func sinkReports(t *testing.T, out string) (ids map[int]int, counts map[string]int, from map[int]string) {
	t.Helper()
	ids, counts, from = map[int]int{}, map[string]int{}, map[int]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e sinkLine
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("sink line %q: %v", l, err)
		}
		if e.Event != "data" {
			continue
		}
		id, count, ok := strings.Cut(e.Text, " ")
		n, err := strconv.Atoi(id)
		if !ok || err != nil {
			t.Fatalf("sink got %q, want ID COUNT", e.Text)
		}
		ids[n]++
		counts[count]++
		host, _, _ := net.SplitHostPort(e.Peer)
		from[n] = host
	}
	return ids, counts, from
}

// N shard processes of one fleet, started apart and told when to start,
// between them run every device id of 1..count exactly once, each seeing
// the whole fleet's device.count. K comes from each of the variables
// --shard auto/N reads, and from K/N.
func TestSimulateShardsCoverTheFleetE2E(t *testing.T) {
	const count, n = 50, 4
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	sink := start(t, "wirecat", "listen", "-k", "--frame", "line", "-o", "json", "--recv-only", addr)
	waitListen(t, port)
	script := writeScript(t, reportScript)
	at := time.Now().Add(1500 * time.Millisecond).UTC()
	common := []string{bin, "simulate", script, "--count", strconv.Itoa(count), "--connect", addr,
		"--start-at", at.Format(time.RFC3339Nano), "--ramp", "500ms", "--duration", "20s"}
	shards := []*proc{
		start(t, "env", append([]string{"JOB_COMPLETION_INDEX=0", "NOMAD_ALLOC_INDEX=3"}, append(common, "--shard", "auto/4")...)...),
		start(t, "env", append([]string{"NOMAD_ALLOC_INDEX=1", "WIRECAT_SHARD=3"}, append(common, "--shard", "auto/4")...)...),
		start(t, "env", append([]string{"WIRECAT_SHARD=2"}, append(common, "--shard", "auto/4")...)...),
		start(t, "env", append([]string{"WIRECAT_SHARD=0"}, append(common, "--shard", "3/4")...)...), // K/N wins over the variables
	}
	for k, p := range shards {
		if code := p.wait(30 * time.Second); code != 0 {
			t.Fatalf("shard %d exited %d: %s", k, code, p.stderr)
		}
		want := fmt.Sprintf("shard %d/%d: %d devices started", k, n, (count-k-1)/n+1)
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("shard %d's summary: %q, want %q", k, p.stderr, want)
		}
		if !strings.Contains(p.stderr.String(), "waiting until "+at.Truncate(time.Second).Format(time.RFC3339)) {
			t.Errorf("shard %d did not say it waited for --start-at: %q", k, p.stderr)
		}
	}
	var ids map[int]int
	waitFor(t, 10*time.Second, "every device's line at the sink", func() bool {
		ids, _, _ = sinkReports(t, sink.stdout.String())
		return len(ids) >= count
	})
	ids, counts, _ := sinkReports(t, sink.stdout.String())
	for id := 1; id <= count; id++ {
		if ids[id] != 1 {
			t.Errorf("device %d ran %d times", id, ids[id])
		}
	}
	if len(ids) != count {
		t.Errorf("%d device ids reached the sink, want %d (1..%d): %v", len(ids), count, count, ids)
	}
	if len(counts) != 1 || counts[strconv.Itoa(count)] != count {
		t.Errorf("device.count as the devices saw it: %v, want %d everywhere", counts, count)
	}
}

// -s with a range spreads the devices over the source addresses by id:
// device i connects from item (i-1) mod 4, which the listener sees.
func TestSimulateSourceRangeE2E(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	sink := start(t, "wirecat", "listen", "-k", "--frame", "line", "-o", "json", "--recv-only", addr)
	waitListen(t, port)
	const count = 12
	out, errOut, code := runWirecat(t, "", 30*time.Second, "simulate", writeScript(t, reportScript), "--count", strconv.Itoa(count),
		"--connect", addr, "-s", "127.0.0.2-127.0.0.5")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	var from map[int]string
	waitFor(t, 10*time.Second, "every device's line at the sink", func() bool {
		_, _, from = sinkReports(t, sink.stdout.String())
		return len(from) >= count
	})
	seen := map[string]int{}
	for id := 1; id <= count; id++ {
		want := fmt.Sprintf("127.0.0.%d", 2+(id-1)%4)
		if from[id] != want {
			t.Errorf("device %d connected from %q, want %s", id, from[id], want)
		}
		seen[from[id]]++
	}
	if len(seen) != 4 {
		t.Errorf("source addresses seen: %v, want 4 of 3 devices each", seen)
	}
}

// What --shard, --start-at and -s refuse, they refuse before anything
// starts, as usage errors that say what to write.
func TestSimulateShardUsageErrors(t *testing.T) {
	script := writeScript(t, reportScript)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--shard", "auto/4"}, "none of JOB_COMPLETION_INDEX, NOMAD_ALLOC_INDEX, WIRECAT_SHARD is set"},
		{[]string{"--shard", "4/4"}, "out of range (0 to 3)"},
		{[]string{"--shard", "0/0"}, "N must be at least 1"},
		{[]string{"--shard", "0/11"}, "11 shards for --count 10"},
		{[]string{"--shard", "two"}, "want K/N"},
		{[]string{"--start-at", "tomorrow"}, "want an RFC 3339 time"},
		{[]string{"--start-at", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "--duration", "10m"}, "nothing is left to run"},
		{[]string{"-s", "127.0.0.9-127.0.0.2"}, "ends before it starts"},
		{[]string{"-s", "10.0.0.0-10.0.255.255"}, "more than 4096 source addresses"},
		{[]string{"-s", "127.0.0.2,,127.0.0.3"}, "empty"},
	} {
		code, _, errOut := runSimulate(t, append([]string{script, "--count", "10"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want exit %d with %q", tc.args, code, errOut, exitUsage, tc.want)
		}
		if strings.Contains(errOut, "started") {
			t.Errorf("%v: devices started: %q", tc.args, errOut)
		}
	}
}

// A --start-at in the past starts at once, with a note; the ramp slots
// already due start together.
func TestSimulateStartAtPast(t *testing.T) {
	past := time.Now().Add(-3 * time.Second).UTC().Format(time.RFC3339)
	begin := time.Now()
	code, _, errOut := runSimulate(t, writeScript(t, reportScript), "--count", "3", "--start-at", past, "--ramp", "2s")
	if code != 0 || !strings.Contains(errOut, "passed") || !strings.Contains(errOut, "starting now") ||
		!strings.Contains(errOut, "3 devices started") {
		t.Errorf("exit %d, %q", code, errOut)
	}
	if took := time.Since(begin); took > 1500*time.Millisecond {
		t.Errorf("the ramp that passed with the start took %v more", took)
	}
}

// Ctrl-C while the shard waits for --start-at ends it at once, exit 130.
func TestSimulateStartAtInterruptE2E(t *testing.T) {
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	p := start(t, "wirecat", "simulate", writeScript(t, reportScript), "--count", "4", "--shard", "1/2", "--start-at", at)
	p.waitStderr("waiting until", 10*time.Second)
	begin := time.Now()
	p.cmd.Process.Signal(syscall.SIGINT)
	code := p.wait(5 * time.Second)
	if took := time.Since(begin); took > time.Second {
		t.Errorf("exited %v after Ctrl-C", took)
	}
	if code != 130 {
		t.Errorf("exit %d, want 130: %s", code, p.stderr)
	}
}

// The descriptor warning counts the devices this shard runs, not the whole
// fleet: a fleet too big for one process is what shards are for.
func TestSimulateShardDescriptorWarningE2E(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<20 {
		t.Skipf("descriptor limit %d: too large to outgrow here", lim.Cur)
	}
	count := strconv.Itoa(int(3 * lim.Cur))
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339) // nothing starts: the warning comes before the wait
	for _, tc := range []struct {
		shard string
		warn  bool
	}{{"", true}, {"0/8", false}} {
		args := []string{"simulate", writeScript(t, reportScript), "--count", count, "--start-at", at, "--connect", "127.0.0.1:9"}
		if tc.shard != "" {
			args = append(args, "--shard", tc.shard)
		}
		p := start(t, "wirecat", args...)
		p.waitStderr("waiting until", 10*time.Second)
		p.cmd.Process.Signal(syscall.SIGINT)
		p.wait(5 * time.Second)
		if warned := strings.Contains(p.stderr.String(), "ulimit -n"); warned != tc.warn {
			t.Errorf("--count %s --shard %q: warned %v, want %v: %s", count, tc.shard, warned, tc.warn, p.stderr)
		}
	}
}

// summaryFile is the part of a --summary file the shard tests compare.
type summaryFile struct {
	Shard    string
	Shards   []string
	Counters map[string]int64
	Timings  map[string]struct{ Count int64 }
}

func readSummary(t *testing.T, b []byte) summaryFile {
	t.Helper()
	var s summaryFile
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("summary: %v\n%s", err, b)
	}
	return s
}

// The merged summary of N shards is the summary of one run of the whole
// fleet: every counter the same, every timing with as many samples.
func TestSimulateShardsMergedSummaryE2E(t *testing.T) {
	const count, n = 40, 4
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	start(t, "wirecat", "listen", "-k", "--frame", "line", "--recv-only", "-q", addr)
	waitListen(t, port)
	script := writeScript(t, reportScript)
	dir := t.TempDir()
	common := []string{"simulate", script, "--count", strconv.Itoa(count), "--connect", addr, "--duration", "20s", "-q"}
	at := time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)
	var shards []*proc
	var files []string
	for k := range n {
		f := filepath.Join(dir, fmt.Sprintf("summary-%d.json", k))
		files = append(files, f)
		shards = append(shards, start(t, "wirecat", append(common, "--shard", fmt.Sprintf("%d/%d", k, n), "--start-at", at, "--summary", f)...))
	}
	whole := filepath.Join(dir, "whole.json")
	if _, errOut, code := runWirecat(t, "", 30*time.Second, append(common, "--summary", whole)...); code != 0 {
		t.Fatalf("the whole fleet: exit %d: %s", code, errOut)
	}
	for k, p := range shards {
		if code := p.wait(30 * time.Second); code != 0 {
			t.Fatalf("shard %d: exit %d: %s", k, code, p.stderr)
		}
		b, err := os.ReadFile(files[k])
		if err != nil {
			t.Fatal(err)
		}
		if s := readSummary(t, b); s.Shard != fmt.Sprintf("%d/%d", k, n) {
			t.Errorf("shard %d's summary says it is shard %q", k, s.Shard)
		}
	}
	out, errOut, code := runWirecat(t, "", 10*time.Second, append(append([]string{"summary"}, files...), "-o", "json")...)
	if code != 0 {
		t.Fatalf("summary: exit %d: %s", code, errOut)
	}
	merged := readSummary(t, []byte(out))
	b, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	one := readSummary(t, b)
	if len(merged.Shards) != n {
		t.Errorf("the merged summary holds shards %q, want %d", merged.Shards, n)
	}
	if one.Counters["devices.started"] != count || one.Counters["msgs.sent"] != count {
		t.Fatalf("the whole fleet's summary: %v", one.Counters)
	}
	if fmt.Sprint(merged.Counters) != fmt.Sprint(one.Counters) {
		t.Errorf("merged counters %v\nwhole fleet's   %v", merged.Counters, one.Counters)
	}
	if len(merged.Timings) != len(one.Timings) {
		t.Errorf("merged timings %v, the whole fleet's %v", merged.Timings, one.Timings)
	}
	for name, tm := range one.Timings {
		if merged.Timings[name].Count != tm.Count {
			t.Errorf("timing %s: %d samples merged, %d in the whole fleet", name, merged.Timings[name].Count, tm.Count)
		}
	}
}
