package main

// Issue 12, metrics inside simulate: the --summary file against what a
// real `wirecat listen -k` sink received, --threshold's exit codes (0 met,
// 3 unmet, 2 bad syntax before any connection), conn:request's round trips
// against a peer with a known delay, --report's JSON lines, and the summary
// written on Ctrl-C.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/testpeer"
	"github.com/wirecat-dev/wirecat/metrics"
	"github.com/wirecat-dev/wirecat/script/sim"
)

func readSimSummary(t *testing.T, path string) metrics.Summary {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := metrics.ReadSummary(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// sinkLines runs `wirecat listen -k --frame line --recv-only` and returns
// its address and a count of the lines it printed so far.
func sinkLines(t *testing.T) (string, func() int) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := start(t, "wirecat", "listen", "-k", "--frame", "line", "--recv-only", addr)
	waitListen(t, port)
	return addr, func() int { return strings.Count(p.stdout.String(), "\n") }
}

// TestSimulateSummaryFile: the summary file holds what the run did: the
// messages sent are the lines the sink printed, one connect per device,
// no error; the met thresholds exit 0 and are printed as met.
func TestSimulateSummaryFile(t *testing.T) {
	addr, received := sinkLines(t)
	const devices, each = 20, 5
	script := writeScript(t, fmt.Sprintf(`
local c = assert(net.connect(TARGET, {frame = "line"}))
for i = 1, %d do
  assert(c:send(string.format("device %%d reading %%d", device.id, i)))
  metrics.count("readings")
  sleep(0.01)
end
c:close()
`, each))
	sum := filepath.Join(t.TempDir(), "run.json")
	_, errOut, code := runWirecat(t, "", 30*time.Second, "simulate", script, "-n", fmt.Sprint(devices), "--connect", addr,
		"--summary", sum, "--threshold", "errors == 0", "--threshold", fmt.Sprintf("readings == %d", devices*each),
		"--threshold", "connect.failed < 1%")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	waitFor(t, 10*time.Second, "the sink to print every line", func() bool { return received() >= devices*each })
	s := readSimSummary(t, sum)
	want := map[string]int64{
		"msgs.sent": int64(received()), "readings": devices * each, "devices.started": devices,
		"devices.connected": devices, "devices.failed": 0, "devices.stopped": 0, "connect.attempts": devices,
		"connect.failed": 0, "errors": 0, "reconnects": 0, "msgs.recv": 0,
	}
	for k, v := range want {
		if got, ok := s.Counters[k]; !ok || got != v {
			t.Errorf("%s = %d (present %v), want %d", k, got, ok, v)
		}
	}
	var bytes int64
	for d := 1; d <= devices; d++ {
		for i := 1; i <= each; i++ {
			bytes += int64(len(fmt.Sprintf("device %d reading %d\n", d, i)))
		}
	}
	if s.Counters["bytes.sent"] != bytes {
		t.Errorf("bytes.sent %d, want %d", s.Counters["bytes.sent"], bytes)
	}
	if c := s.Timings["connect"]; c.Count != devices || c.Max <= 0 {
		t.Errorf("connect timing %+v, want %d samples", c, devices)
	}
	if s.Elapsed < float64(each)*0.01 || s.Started.IsZero() {
		t.Errorf("elapsed %v, started %v", s.Elapsed, s.Started)
	}
	for _, line := range []string{"wirecat: threshold errors == 0: met (0)", "wirecat: threshold readings == 100: met (100)",
		"wirecat: threshold connect.failed < 1%: met (0%", "wirecat:   msgs.sent ", "wirecat:   connect "} {
		if !strings.Contains(errOut, line) {
			t.Errorf("stderr lacks %q:\n%s", line, errOut)
		}
	}
}

// TestSimulateThresholdUnmet: an unmet threshold exits 3, after writing the
// summary file and saying which one, with its actual figure; a metric that
// does not exist is unmet, not passed.
func TestSimulateThresholdUnmet(t *testing.T) {
	addr, _ := sinkLines(t)
	script := writeScript(t, `local c = assert(net.connect(TARGET)); c:send("x\n"); c:close()`)
	sum := filepath.Join(t.TempDir(), "run.json")
	_, errOut, code := runWirecat(t, "", 30*time.Second, "simulate", script, "-n", "3", "--connect", addr,
		"--summary", sum, "--threshold", "msgs.sent == 3", "--threshold", "msgs.sent < 2", "--threshold", "rttt.p99 < 1s")
	if code != exitUnmet {
		t.Fatalf("exit %d, want 3\n%s", code, errOut)
	}
	for _, line := range []string{"threshold msgs.sent == 3: met (3)", "threshold msgs.sent < 2: NOT met (3)",
		"threshold rttt.p99 < 1s: NOT met (absent)"} {
		if !strings.Contains(errOut, line) {
			t.Errorf("stderr lacks %q:\n%s", line, errOut)
		}
	}
	if s := readSimSummary(t, sum); s.Counters["msgs.sent"] != 3 {
		t.Errorf("the summary file says %d sent", s.Counters["msgs.sent"])
	}
}

// TestSimulateThresholdSyntax: a threshold that does not parse is a usage
// error (exit 2) before any device connects or any file is made.
func TestSimulateThresholdSyntax(t *testing.T) {
	var accepted atomic.Int64
	target := testpeer.TCP(t, func(net.Conn) { accepted.Add(1) })
	script := writeScript(t, `assert(net.connect(TARGET))`)
	sum := filepath.Join(t.TempDir(), "run.json")
	for _, bad := range []string{"rtt.p99 <", "rtt.p99 << 5ms", "errors == lots", "connect.p99 < 5parsecs", "< 5"} {
		_, errOut, code := runWirecat(t, "", 10*time.Second, "simulate", script, "--connect", target,
			"--summary", sum, "--threshold", "errors == 0", "--threshold", bad)
		if code != exitUsage || !strings.Contains(errOut, "wirecat: --threshold: ") || !strings.Contains(errOut, "column") {
			t.Errorf("%q: exit %d, stderr %q", bad, code, errOut)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Errorf("%d connections before the usage error", n)
	}
	if _, err := os.Stat(sum); err == nil {
		t.Errorf("the summary file was created before the usage error")
	}
}

// TestSimulateRequestRTT: conn:request against a peer that answers each
// line after a known delay: the summary's rtt percentiles lie between the
// delay and the delay plus a shared machine's slack, and its count is the
// requests made.
func TestSimulateRequestRTT(t *testing.T) {
	const delay = 25 * time.Millisecond
	target := testpeer.TCP(t, testpeer.Lines(func(line string) string {
		time.Sleep(delay)
		return line
	}))
	script := writeScript(t, `
local c = assert(net.connect(TARGET, {frame = "line"}))
for i = 1, 10 do assert(c:request("ping " .. i, 5)) end
`)
	sum := filepath.Join(t.TempDir(), "run.json")
	_, errOut, code := runWirecat(t, "", 30*time.Second, "simulate", script, "-n", "5", "--connect", target,
		"--summary", sum, "--threshold", "rtt.p50 >= 25ms", "--threshold", "rtt.timeouts == 0")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	s := readSimSummary(t, sum)
	rtt := s.Timings["rtt"]
	if rtt.Count != 50 || s.Counters["rtt.total"] != 50 {
		t.Fatalf("rtt count %d, rtt.total %d, want 50", rtt.Count, s.Counters["rtt.total"])
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		// Never under the delay; over it by at most a loaded machine's slack.
		if got := rtt.Quantile(q); got < delay || got > delay+250*time.Millisecond {
			t.Errorf("rtt p%v %v, want %v to %v", q*100, got, delay, delay+250*time.Millisecond)
		}
	}
	if !strings.Contains(errOut, "wirecat:   rtt ") {
		t.Errorf("the text summary lacks the rtt line:\n%s", errOut)
	}
}

// TestSimulateReportJSON: --report with -o json puts a report object per
// interval on stdout beside the events; --report-file writes the same to a
// file; the reports' counters grow to what the summary says.
func TestSimulateReportJSON(t *testing.T) {
	addr, _ := sinkLines(t)
	script := writeScript(t, `
local c = assert(net.connect(TARGET))
for i = 1, 8 do c:send("r\n"); metrics.observe("work", 0.002); sleep(0.1) end
`)
	dir := t.TempDir()
	file := filepath.Join(dir, "reports.jsonl")
	out, errOut, code := runWirecat(t, "", 30*time.Second, "simulate", script, "-n", "4", "--connect", addr,
		"--report", "200ms", "--report-file", file, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	var reports []sim.Report
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `"event":"report"`) {
			var r sim.Report
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			reports = append(reports, r)
		}
	}
	if len(reports) < 2 {
		t.Fatalf("%d reports on stdout in a 0.8s run every 200ms:\n%s", len(reports), out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"event":"report"`); n != len(reports) {
		t.Errorf("--report-file has %d reports, stdout %d", n, len(reports))
	}
	// The first report, 200ms in, finds every device connected and
	// sending (the last may be taken as they end).
	first, last := reports[0], reports[len(reports)-1]
	if first.Counters["devices.started"] != 4 || first.Up != 4 || first.Running != 4 || last.Counters["msgs.sent"] < 4 {
		t.Errorf("first report %+v, last %+v", first, last)
	}
	if w, ok := first.Timings["work"]; !ok || w.P99 < 0.0019 || w.P99 > 0.0021 {
		t.Errorf("the work timing of the first interval: %+v", first.Timings)
	}
	if rate := first.Rates["msgs.sent"]; rate < 10 || rate > 80 {
		t.Errorf("msgs.sent rate %v, want about 40/s (4 devices, 10 a second)", rate)
	}
	if strings.Contains(errOut, "up,") {
		t.Errorf("with -o json the report lines should not be on stderr:\n%s", errOut)
	}
}

// TestSimulateReportText: --report without -o json writes a line per
// interval on stderr (not a terminal here: plain lines).
func TestSimulateReportText(t *testing.T) {
	script := writeScript(t, `local c = assert(net.connect(TARGET)); for i = 1, 5 do c:send("x\n"); sleep(0.1) end`)
	_, errOut, code := runWirecat(t, "", 30*time.Second, "simulate", script, "-n", "2", "--report", "200ms")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if n := strings.Count(errOut, " up, "); n < 1 || !strings.Contains(errOut, "connect p99") && !strings.Contains(errOut, "sent ") {
		t.Errorf("%d report lines:\n%s", n, errOut)
	}
}

// TestSimulateSummaryOnSignal: Ctrl-C ends the fleet with 130, after
// writing the summary file with the figures so far and the verdicts.
func TestSimulateSummaryOnSignal(t *testing.T) {
	addr, received := sinkLines(t)
	script := writeScript(t, `local c = assert(net.connect(TARGET)); every(0.05, function() c:send("tick\n") end)`)
	sum := filepath.Join(t.TempDir(), "run.json")
	p := start(t, "wirecat", "simulate", script, "-n", "10", "--connect", addr, "--summary", sum, "--threshold", "msgs.sent > 0")
	waitFor(t, 10*time.Second, "ticks at the sink", func() bool { return received() >= 50 })
	p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(5 * time.Second); code != 130 {
		t.Fatalf("exit %d, want 130\n%s", code, p.stderr)
	}
	s := readSimSummary(t, sum)
	if s.Counters["msgs.sent"] < 50 || s.Counters["devices.started"] != 10 {
		t.Errorf("summary after Ctrl-C: %v", s.Counters)
	}
	if !strings.Contains(p.stderr.String(), "threshold msgs.sent > 0: met") {
		t.Errorf("no verdict after Ctrl-C:\n%s", p.stderr)
	}
}

// TestSimulateReportLiveLine: on a terminal, --report's line is redrawn in
// place of the progress line (which does not show), and a log line never
// lands on its end.
func TestSimulateReportLiveLine(t *testing.T) {
	need(t, "python3")
	dir := t.TempDir()
	script, errFile := filepath.Join(dir, "dev.lua"), filepath.Join(dir, "stderr")
	os.WriteFile(script, []byte(`local c = assert(net.connect(TARGET))
for i = 1, 12 do c:send("x\n"); sleep(0.1) end
log.info("done sending")
sleep(0.5)
`), 0o644)
	py := start(t, "python3", "-c", ptyStderr, errFile, bin, "simulate", script, "-n", "3", "--report", "200ms")
	py.wait(20 * time.Second)
	b, _ := os.ReadFile(errFile)
	got := string(b)
	if n := strings.Count(got, "\r\033[K"); n < 3 || !strings.Contains(got, "3 up, 3 running") {
		t.Fatalf("%d redraws, no live report: %q", n, got)
	}
	if strings.Contains(got, " conns  sent ") {
		t.Errorf("the progress line showed beside the report: %q", got)
	}
	for _, w := range []string{"device 1: done sending", "wirecat: 3 devices started", "wirecat: summary: "} {
		i := strings.Index(got, w)
		if i < 0 {
			t.Fatalf("stderr lacks %q: %q", w, got)
		}
		if i > 0 && got[i-1] != '\n' && !strings.HasSuffix(got[:i], "\r\033[K") {
			t.Fatalf("%q lands after the report line: %q", w, got)
		}
	}
}

// TestSimulateSummaryOnSignalBeforeStart: a shard stopped while it waits
// for --start-at (a pod terminated before the fleet's start) still leaves
// a summary file that `wirecat summary` reads: its shard, no device run.
func TestSimulateSummaryOnSignalBeforeStart(t *testing.T) {
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	sum := filepath.Join(t.TempDir(), "shard-1.json")
	p := start(t, "wirecat", "simulate", writeScript(t, `sleep(1)`), "--count", "4", "--shard", "1/2",
		"--start-at", at, "--summary", sum)
	p.waitStderr("waiting until", 10*time.Second)
	p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(5 * time.Second); code != 130 {
		t.Fatalf("exit %d, want 130\n%s", code, p.stderr)
	}
	s := readSimSummary(t, sum)
	if s.Shard != "1/2" || s.Counters["devices.started"] != 0 {
		t.Errorf("summary of a shard stopped before its start: shard %q, counters %v", s.Shard, s.Counters)
	}
	out, errOut, code := runWirecat(t, "", 10*time.Second, "summary", sum)
	if code != 0 || !strings.Contains(out, "shard 1/2") {
		t.Errorf("wirecat summary: exit %d\n%s%s", code, out, errOut)
	}
}

// TestSimulateSummaryNotLeftEmpty: a run that fails before its devices
// start (here a script whose FRAME is not a framing) leaves no summary
// file behind, not an empty one that `wirecat summary` would trip on.
func TestSimulateSummaryNotLeftEmpty(t *testing.T) {
	sum := filepath.Join(t.TempDir(), "summary.json")
	_, errOut, code := runWirecat(t, "", 10*time.Second, "simulate", writeScript(t, "FRAME = \"sideways:\"\nsleep(1)"), "--summary", sum)
	if code != 2 || !strings.Contains(errOut, "FRAME") {
		t.Fatalf("exit %d, want 2 naming FRAME\n%s", code, errOut)
	}
	if _, err := os.Stat(sum); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s behind (%v)", sum, err)
	}
}
