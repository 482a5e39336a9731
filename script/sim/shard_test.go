package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
)

func TestParseShard(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	none := env()
	for _, tc := range []struct {
		in     string
		count  int
		getenv func(string) string
		want   Shard
		err    string // a part of the error; "" for none
	}{
		{"0/4", 100, none, Shard{0, 4}, ""},
		{"3/4", 100, none, Shard{3, 4}, ""},
		{"0/1", 1, none, Shard{0, 1}, ""},
		{"4/4", 100, none, Shard{}, "out of range (0 to 3)"},
		{"-1/4", 100, none, Shard{}, "out of range"},
		{"0/0", 100, none, Shard{}, "at least 1"},
		{"0/-2", 100, none, Shard{}, "at least 1"},
		{"0/5", 4, none, Shard{}, "5 shards for --count 4"},
		{"x/4", 100, none, Shard{}, `K "x"`},
		{"1/y", 100, none, Shard{}, `N "y"`},
		{"3", 100, none, Shard{}, "want K/N"},
		{"auto/4", 100, none, Shard{}, "JOB_COMPLETION_INDEX, NOMAD_ALLOC_INDEX, WIRECAT_SHARD"},
		{"auto/4", 100, env("WIRECAT_SHARD", "2"), Shard{2, 4}, ""},
		{"auto/4", 100, env("NOMAD_ALLOC_INDEX", "1", "WIRECAT_SHARD", "2"), Shard{1, 4}, ""},
		{"auto/4", 100, env("JOB_COMPLETION_INDEX", "3", "NOMAD_ALLOC_INDEX", "1"), Shard{3, 4}, ""},
		{"auto/4", 100, env("JOB_COMPLETION_INDEX", "4"), Shard{}, "K 4 from $JOB_COMPLETION_INDEX is out of range"},
		{"auto/4", 100, env("WIRECAT_SHARD", "two"), Shard{}, `"two" from $WIRECAT_SHARD is not a number`},
	} {
		got, err := ParseShard(tc.in, tc.count, tc.getenv)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ParseShard(%q, %d): %v", tc.in, tc.count, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseShard(%q, %d) = %v, %v; want an error with %q", tc.in, tc.count, got, err, tc.err)
		case err == nil && got != tc.want:
			t.Errorf("ParseShard(%q, %d) = %v, want %v", tc.in, tc.count, got, tc.want)
		}
	}
}

// Every id of a fleet is in exactly one shard, whatever the sizes, and
// Size agrees with Has.
func TestShardsCoverTheFleetOnce(t *testing.T) {
	for _, count := range []int{1, 2, 7, 8, 9, 100} {
		for n := 1; n <= min(count, 9); n++ {
			seen := make([]int, count+1)
			total := 0
			for k := 0; k < n; k++ {
				s := Shard{k, n}
				size := 0
				for id := s.First(); id <= count; id += s.Step() {
					if !s.Has(id) {
						t.Fatalf("shard %v runs %d but Has says no", s, id)
					}
					seen[id]++
					size++
				}
				if size != s.Size(count) {
					t.Errorf("shard %v of %d: runs %d, Size says %d", s, count, size, s.Size(count))
				}
				if size < count/n || size > count/n+1 {
					t.Errorf("shard %v of %d runs %d devices: unbalanced", s, count, size)
				}
				total += size
			}
			for id := 1; id <= count; id++ {
				if seen[id] != 1 {
					t.Fatalf("count %d in %d shards: id %d runs %d times", count, n, id, seen[id])
				}
			}
			if total != count {
				t.Errorf("count %d in %d shards: %d ran", count, n, total)
			}
		}
	}
}

func TestParseStartAt(t *testing.T) {
	now := time.Date(2026, 11, 29, 21, 10, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"2026-11-29T21:30:00Z", time.Date(2026, 11, 29, 21, 30, 0, 0, time.UTC)},
		{"2026-11-29T22:30:00+01:00", time.Date(2026, 11, 29, 21, 30, 0, 0, time.UTC)},
		{"2026-11-29T21:30:00.5Z", time.Date(2026, 11, 29, 21, 30, 0, 5e8, time.UTC)},
		{"21:30:15", time.Date(2026, 11, 29, 21, 30, 15, 0, time.UTC)},
		{"21:30", time.Date(2026, 11, 29, 21, 30, 0, 0, time.UTC)},
		{"00:05", time.Date(2026, 11, 29, 0, 5, 0, 0, time.UTC)}, // today, even when past
	} {
		got, err := ParseStartAt(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseStartAt(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	// The day is UTC's even when the local zone is somewhere else.
	late := time.Date(2026, 11, 29, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600)) // 04:30 on the 30th in UTC
	if got, _ := ParseStartAt("05:00", late); !got.Equal(time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)) {
		t.Errorf("05:00 at %v = %v, want the 30th in UTC", late, got)
	}
	for _, bad := range []string{"", "now", "25:00", "21:30:00Z", "2026-11-29", "2026-11-29 21:30:00", "+30s"} {
		if got, err := ParseStartAt(bad, now); err == nil {
			t.Errorf("ParseStartAt(%q) = %v, want an error", bad, got)
		} else if !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("ParseStartAt(%q): %v does not say what to write", bad, err)
		}
	}
}

func TestParseSources(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"127.0.0.2", []string{"127.0.0.2"}},
		{"127.0.0.2:4000", []string{"127.0.0.2:4000"}}, // one source keeps its port
		{"[::1]:4000", []string{"[::1]:4000"}},
		{"localhost", []string{"localhost"}},
		{"my-host", []string{"my-host"}}, // a dash, but not a range
		{"127.0.0.2,127.0.0.3", []string{"127.0.0.2", "127.0.0.3"}},
		{"127.0.0.2-127.0.0.5", []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}},
		{"127.0.0.9-127.0.0.9", []string{"127.0.0.9"}},
		{"10.0.0.254-10.0.1.1", []string{"10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1"}},
		{"fd00::fe-fd00::101", []string{"fd00::fe", "fd00::ff", "fd00::100", "fd00::101"}},
		{"127.0.0.2-127.0.0.3, ::1", []string{"127.0.0.2", "127.0.0.3", "::1"}},
	} {
		got, err := ParseSources(tc.in)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ParseSources(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, err string }{
		{"", "empty"},
		{"127.0.0.2,", "empty"},
		{"127.0.0.5-127.0.0.2", "ends before it starts"},
		{"127.0.0.2-::1", "IPv4 address to an IPv4"},
		{"10.0.0.0-10.0.255.255", "more than 4096 source addresses"},
		{"fd00::-fd00::1:0:0", "more than 4096"}, // 2^32 addresses: refused without walking them
		{"127.0.0.2:99999", "port"},
	} {
		got, err := ParseSources(tc.in)
		if err == nil || !errors.Is(err, link.ErrBadAddr) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParseSources(%q) = %q, %v; want a bad address error with %q", tc.in, got, err, tc.err)
		}
	}
	many := strings.TrimSuffix(strings.Repeat("127.0.0.2,", MaxSources+1), ",")
	if _, err := ParseSources(many); err == nil || !strings.Contains(err.Error(), "more than 4096") {
		t.Errorf("a list of %d sources: %v", MaxSources+1, err)
	}
}

func FuzzParseSources(f *testing.F) {
	for _, s := range []string{"127.0.0.2", "127.0.0.2-127.0.0.9", "fd00::1-fd00::ff,127.0.0.1:80", "a-b", "::-::ffff", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSources(s)
		if err != nil {
			return
		}
		if len(got) == 0 || len(got) > MaxSources {
			t.Fatalf("ParseSources(%q) gave %d sources", s, len(got))
		}
		for _, src := range got {
			if _, _, err := link.ParseSource(src); err != nil {
				t.Fatalf("ParseSources(%q) gave %q, which ParseSource refuses: %v", s, src, err)
			}
		}
	})
}

func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"0/4", "auto/4", "3/4", "9/2", "/", "auto/0"} {
		f.Add(s, 10, "1")
	}
	f.Fuzz(func(t *testing.T, s string, count int, env string) {
		sh, err := ParseShard(s, count, func(string) string { return env })
		if err != nil {
			return
		}
		if sh.N < 1 || sh.K < 0 || sh.K >= sh.N || sh.N > count || sh.Size(count) < 1 {
			t.Fatalf("ParseShard(%q, %d) = %v", s, count, sh)
		}
	})
}

func FuzzParseStartAt(f *testing.F) {
	for _, s := range []string{"2026-11-29T21:30:00Z", "21:30", "21:30:15", "x"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 29, 21, 10, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseStartAt(s, now)
		if err == nil && got.IsZero() {
			t.Fatalf("ParseStartAt(%q) gave the zero time", s)
		}
	})
}

// arrivals is a sink that notes each line the built-in sink received and
// when.
type arrivals struct {
	mu    sync.Mutex
	lines map[string]time.Time
}

func (a *arrivals) Emit(e *event.Event) error {
	if e.Kind == event.Data && e.Received() {
		a.mu.Lock()
		if a.lines == nil {
			a.lines = map[string]time.Time{}
		}
		a.lines[string(e.Data)] = time.Now()
		a.mu.Unlock()
	}
	return nil
}

// byID is what each device reported, by its id.
func (a *arrivals) byID(t *testing.T) map[int]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[int]string{}
	for l := range a.lines {
		id, err := strconv.Atoi(strings.Fields(l)[0])
		if err != nil {
			t.Fatalf("line %q", l)
		}
		if _, dup := out[id]; dup {
			t.Errorf("device %d reported twice", id)
		}
		out[id] = l
	}
	return out
}

// The script of the shard tests: each device reports its id, the fleet's
// size and the first draws of its math.random.
const reportScript = `FRAME = "line"
local c = assert(net.connect(TARGET))
local r = {}
for i = 1, 4 do r[i] = tostring(math.random(1, 1000000000)) end
r[5] = tostring(math.random())
assert(c:send(device.id .. " " .. device.count .. " " .. table.concat(r, " ")))
c:close()
`

func writeScript(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.lua")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A device's id, device.count and random sequence are the same whether it
// runs in a shard or in one process with the whole fleet.
func TestShardsReproduceTheWholeFleet(t *testing.T) {
	prog := load(t, writeScript(t, reportScript))
	const count = 11
	run := func(s Shard) map[int]string {
		var got arrivals
		sum, err := Run(context.Background(), Config{Program: prog, Count: count, Shard: s, Seed: 7, Sink: &got, Duration: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Failed != 0 || sum.Devices != s.Size(count) || sum.Shard != s {
			t.Fatalf("shard %v: %+v", s, sum)
		}
		return got.byID(t)
	}
	whole := run(Shard{})
	if len(whole) != count {
		t.Fatalf("the whole fleet reported %d devices: %v", len(whole), whole)
	}
	merged := map[int]string{}
	for k := range 4 {
		s := Shard{k, 4}
		for id, line := range run(s) {
			if !s.Has(id) {
				t.Errorf("shard %v ran device %d", s, id)
			}
			if _, dup := merged[id]; dup {
				t.Errorf("device %d ran in two shards", id)
			}
			merged[id] = line
		}
	}
	for id := 1; id <= count; id++ {
		if merged[id] != whole[id] {
			t.Errorf("device %d: %q in its shard, %q in the whole fleet", id, merged[id], whole[id])
		}
		if f := strings.Fields(whole[id]); len(f) < 2 || f[1] != strconv.Itoa(count) {
			t.Errorf("device %d: device.count is not the fleet's: %q", id, whole[id])
		}
	}
	if len(merged) != count {
		t.Errorf("the shards ran %d devices, want %d", len(merged), count)
	}
}

// Shards started apart keep one schedule: with --start-at, none starts a
// device before it, and device i starts at t0 + ramp*(i-1)/count, which
// shard runs it.
func TestShardsShareTheStartAndTheRamp(t *testing.T) {
	prog := load(t, writeScript(t, reportScript))
	const count, n = 8, 2
	const ramp = 2 * time.Second // 250ms between two starts
	t0 := time.Now().Add(300 * time.Millisecond)
	var got arrivals
	var wg sync.WaitGroup
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(k) * 100 * time.Millisecond) // started apart
			sum, err := Run(context.Background(), Config{Program: prog, Count: count, Shard: Shard{k, n}, StartAt: t0, Ramp: ramp,
				Seed: 1, Sink: &got, Duration: 10 * time.Second})
			if err != nil || sum.Devices != count/n {
				t.Errorf("shard %d: %+v, %v", k, sum, err)
			}
		}()
	}
	wg.Wait()
	byID := got.byID(t)
	got.mu.Lock()
	defer got.mu.Unlock()
	var late []string
	for l, at := range got.lines {
		id, _ := strconv.Atoi(strings.Fields(l)[0])
		due := t0.Add(ramp * time.Duration(id-1) / count)
		if at.Before(due) {
			t.Errorf("device %d reported %v before its start", id, due.Sub(at))
		}
		// An upper bound loose enough for a loaded machine, still
		// tighter than a ramp counted per shard would be late (device 8
		// at 3.5s instead of 1.75s).
		if at.Sub(due) > time.Second {
			late = append(late, fmt.Sprintf("%d +%v", id, at.Sub(due)))
		}
	}
	if len(byID) != count {
		t.Errorf("%d devices reported, want %d", len(byID), count)
	}
	sort.Strings(late)
	if len(late) > 0 {
		t.Errorf("devices far behind the fleet's schedule: %v", late)
	}
}

// A signal while a shard waits for --start-at ends the wait at once.
func TestStartAtWaitEndsWithTheContext(t *testing.T) {
	prog := load(t, writeScript(t, reportScript))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	sum, err := Run(ctx, Config{Program: prog, Count: 2, StartAt: time.Now().Add(time.Hour)})
	if err != nil || sum.Devices != 0 {
		t.Errorf("%+v, %v", sum, err)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("the wait ended %v after the cancel", took)
	}
}
