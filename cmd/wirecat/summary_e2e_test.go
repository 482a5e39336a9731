package main

// wirecat summary (issue 12, Metrics): shard summaries written here are
// merged by the binary, its figures checked against the raw samples, and
// its exit codes against thresholds and damaged or missing files.

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/metrics"
)

// writeShards writes n shard summaries of a fleet into dir, with the
// counters and rtt samples each shard saw; it returns the file names, the
// counters' totals and a histogram of every sample.
func writeShards(t *testing.T, dir string, n int) ([]string, map[string]int64, *metrics.Histogram) {
	t.Helper()
	r := rand.New(rand.NewPCG(12, 12))
	all := &metrics.Histogram{}
	totals := map[string]int64{}
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var files []string
	for k := range n {
		s := metrics.NewSet()
		for name, v := range map[string]int64{
			"devices.started": 1000, "connect.attempts": 1000 + int64(k), "connect.failed": int64(k),
			"msgs.sent": 60_000, "msgs.recv": 59_990 + int64(k), "errors": 0,
		} {
			s.Counter(name).Add(v)
			totals[name] += v
		}
		s.Gauge("devices.up").Set(1000)
		h := s.Histogram("rtt")
		for range 20_000 {
			// Shard k is slower than shard k-1: the merged tail is not any
			// one shard's.
			d := time.Duration((1 + float64(k)) * 4e6 * (0.5 + r.ExpFloat64()))
			h.Observe(d)
			all.Observe(d)
		}
		sum := s.Summary()
		sum.Shard = strings.Join([]string{string(rune('0' + k)), string(rune('0' + n))}, "/")
		sum.Started, sum.Elapsed = t0, 60
		var b bytes.Buffer
		if err := sum.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "shard-"+string(rune('0'+k))+".json")
		if err := os.WriteFile(f, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files, totals, all
}

func TestSummaryMerges(t *testing.T) {
	dir := t.TempDir()
	files, totals, all := writeShards(t, dir, 3)

	out, stderr, code := runWirecat(t, "", 10*time.Second, append([]string{"summary", "-o", "json"}, files...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m, err := metrics.ReadSummary(strings.NewReader(out))
	if err != nil {
		t.Fatalf("-o json does not read back: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(m.Counters, totals) {
		t.Errorf("merged counters %v, want %v", m.Counters, totals)
	}
	if m.Gauges["devices.up"] != 3000 || m.Elapsed != 60 || !reflect.DeepEqual(m.Shards, []string{"0/3", "1/3", "2/3"}) {
		t.Errorf("gauges %v elapsed %v shards %v", m.Gauges, m.Elapsed, m.Shards)
	}
	if got, want := m.Timings["rtt"], all.Data(); !reflect.DeepEqual(got, want) {
		t.Errorf("merged rtt histogram is not the histogram of all 60,000 samples: count %d/%d, max %v/%v",
			got.Count, want.Count, got.Max, want.Max)
	}

	// The text: totals, rates over the 60 s, and the whole fleet's p99.
	out, stderr, code = runWirecat(t, "", 10*time.Second, append([]string{"summary"}, files...)...)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "summary: 1m0s from 2026-11-29 12:00:00Z, 3 of 3 shards\n") {
		t.Errorf("first line of\n%s", out)
	}
	q := func(f float64) string { return metrics.FormatDuration(all.Quantile(f)) }
	for _, want := range [][]string{
		{"msgs.sent", "180000", "3000/s"},
		{"connect.attempts", "3003", "50.0/s"},
		{"connect.failed", "3", "0.050/s"},
		{"devices.up", "3000"},
		{"rtt", "60000", q(0.5), q(0.9), q(0.99), metrics.FormatDuration(all.Max())},
	} {
		if !hasRow(out, want) {
			t.Errorf("no row %q in\n%s", want, out)
		}
	}

	// One shard on stdin, the rest as files: the same figures.
	one, _ := os.ReadFile(files[0])
	out2, stderr, code := runWirecat(t, string(one), 10*time.Second, "summary", "-", files[1], files[2])
	if code != 0 || out2 != out {
		t.Errorf("with -: exit %d, %s\n%s\nwant\n%s", code, stderr, out2, out)
	}
}

func TestSummaryThresholds(t *testing.T) {
	dir := t.TempDir()
	files, _, all := writeShards(t, dir, 2)
	p99 := all.Quantile(0.99)
	above, below := (p99 * 11 / 10).String(), (p99 * 9 / 10).String()
	run := func(args ...string) (string, string, int) {
		return runWirecat(t, "", 10*time.Second, append(append([]string{"summary"}, files...), args...)...)
	}

	out, stderr, code := run("--threshold", "rtt.p99 < "+above, "--threshold", "errors == 0",
		"--threshold", "connect.failed < 1%", "--threshold", "msgs.recv >= 99.9%")
	if code != 0 {
		t.Fatalf("all met: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{
		"threshold rtt.p99 < " + above + ": met (" + metrics.FormatDuration(p99) + ")\n",
		"threshold errors == 0: met (0)\n",
		"threshold connect.failed < 1%: met (0.05% (1 of 2001 connect.attempts))\n",
		"threshold msgs.recv >= 99.9%: met (",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}

	// Unmet: exit 3, each line says which, the error counts them.
	out, stderr, code = run("--threshold", "rtt.p99 < "+below, "--threshold", "errors == 0", "--threshold", "erors == 0")
	if code != 3 {
		t.Fatalf("unmet: exit %d, want 3\n%s%s", code, out, stderr)
	}
	for _, want := range []string{
		"threshold rtt.p99 < " + below + ": NOT met (",
		"threshold errors == 0: met (0)\n",
		"threshold erors == 0: NOT met (absent)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if stderr != "wirecat: 2 of 3 thresholds not met\n" {
		t.Errorf("stderr %q", stderr)
	}

	// -o json: the JSON alone on stdout, the verdicts on stderr.
	out, stderr, code = run("-o", "json", "--threshold", "rtt.p99 < "+below)
	if _, err := metrics.ReadSummary(strings.NewReader(out)); code != 3 || err != nil ||
		!strings.HasPrefix(stderr, "threshold rtt.p99 < "+below+": NOT met (") {
		t.Errorf("-o json unmet: exit %d, %v, stderr %q", code, err, stderr)
	}
}

func TestSummaryErrors(t *testing.T) {
	dir := t.TempDir()
	files, _, _ := writeShards(t, dir, 2)
	good, _ := os.ReadFile(files[0])
	damaged := filepath.Join(dir, "damaged.json")
	lines := strings.SplitAfter(string(good), "\n")
	os.WriteFile(damaged, []byte(strings.Join(lines[:5], "")+"  \"Counters\": {\"errors\" 0}\n}\n"), 0o644)
	foreign := filepath.Join(dir, "k6.json")
	os.WriteFile(foreign, []byte(`{"metrics": {"http_req_duration": {"p(95)": 12.5}}}`), 0o644)
	missing := filepath.Join(dir, "missing.json")
	other, _, _ := writeShards(t, t.TempDir(), 3) // another fleet, of 3 shards

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		// A bad threshold is found before any file is read, even a missing one.
		{"syntax", []string{missing, "--threshold", "rtt.p99 <= 50"}, 2,
			[]string{`wirecat: threshold "rtt.p99 <= 50": column 12: rtt.p99 is a timing: give the value a unit, e.g. 50ms`, "wirecat: hint: a threshold is METRIC OP VALUE"}},
		{"no base", []string{files[0], "--threshold", "timeouts < 1%"}, 2, []string{"timeouts has no base"}},
		{"missing", []string{files[0], missing}, 2, []string{"missing.json: no such file"}},
		{"damaged", []string{files[0], damaged}, 1,
			[]string{"wirecat: summary " + damaged + ": line 6: invalid character '0' after object key", "hint: a summary file is what simulate --summary FILE writes"}},
		{"foreign", []string{foreign}, 1, []string{"summary " + foreign + ": no Version: not a wirecat summary file"}},
		{"twice", []string{files[0], files[1], files[0]}, 1, []string{files[0] + " and " + files[0] + " both hold shard 0/2"}},
		{"other fleet", []string{files[0], other[1]}, 1, []string{other[1] + " holds shard 1/3, " + files[0] + " shard 0/2: shards of different fleets"}},
		{"no file", nil, 2, []string{"expected \"<files> ...\""}},
	} {
		out, stderr, code := runWirecat(t, "", 10*time.Second, append([]string{"summary"}, tc.args...)...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", tc.name, code, tc.code, out, stderr)
		}
		for _, want := range tc.stderr {
			if !strings.Contains(stderr, want) {
				t.Errorf("%s: no %q in stderr:\n%s", tc.name, want, stderr)
			}
		}
		if tc.code != 0 && out != "" {
			t.Errorf("%s: printed a summary anyway:\n%s", tc.name, out)
		}
	}
}

// hasRow reports a line of text whose fields are want.
func hasRow(text string, want []string) bool {
	for _, line := range strings.Split(text, "\n") {
		if reflect.DeepEqual(strings.Fields(line), want) {
			return true
		}
	}
	return false
}
