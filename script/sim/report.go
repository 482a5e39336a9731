package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirecat-dev/wirecat/metrics"
	"github.com/wirecat-dev/wirecat/script"
)

// report writes the fleet's figures every cfg.Report until the returned
// function is called (which writes no last report: the summary follows).
// Rates and timings are over the interval just ended, not the whole run,
// so a line shows what the fleet does now.
func report(cfg Config, status *statusLine, st *script.Stats, running *atomic.Int64, start time.Time) func() {
	r := &reporter{cfg: cfg, status: status, st: st, running: running, start: start, prev: st.Set.Summary(), at: start}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(cfg.Report)
		defer tick.Stop()
		for {
			select {
			case <-done:
				if status != nil {
					status.clear()
				}
				return
			case now := <-tick.C:
				r.once(now)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

type reporter struct {
	cfg     Config
	status  *statusLine
	st      *script.Stats
	running *atomic.Int64
	start   time.Time
	prev    metrics.Summary // the figures at the last report
	at      time.Time       // when they were taken
}

// Report is one interval's figures, as the JSON lines give them: counters
// since the start and their rates over the interval, timings over the
// interval (in seconds).
type Report struct {
	Time     string             `json:"time"`
	Event    string             `json:"event"`    // "report", beside -o json's open, data, close
	Elapsed  float64            `json:"elapsed"`  // seconds since the fleet started
	Interval float64            `json:"interval"` // seconds since the last report
	Running  int64              `json:"running"`  // devices started and not yet ended
	Up       int64              `json:"up"`       // devices with a connection open
	Counters map[string]int64   `json:"counters"`
	Rates    map[string]float64 `json:"rates"` // per second over the interval
	Gauges   map[string]float64 `json:"gauges,omitempty"`
	Timings  map[string]Timing  `json:"timings,omitempty"`
}

// Timing is a timing over one interval, in seconds.
type Timing struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// once takes the figures and writes them out.
func (r *reporter) once(now time.Time) {
	cur := r.st.Set.Summary()
	rep := r.build(cur, now)
	r.prev, r.at = cur, now
	if r.cfg.ReportText && r.cfg.Stderr != nil {
		if r.status != nil {
			r.status.draw(rep.line())
		} else {
			fmt.Fprintf(r.cfg.Stderr, "wirecat: %s\n", rep.line())
		}
	}
	if r.cfg.ReportJSON != nil {
		b, err := json.Marshal(rep)
		if err == nil {
			r.cfg.ReportJSON.Write(append(b, '\n'))
		}
	}
}

func (r *reporter) build(cur metrics.Summary, now time.Time) Report {
	iv := now.Sub(r.at).Seconds()
	c := cur.Counters
	rep := Report{
		Time: now.UTC().Format(time.RFC3339Nano), Event: "report",
		Elapsed: round3(now.Sub(r.start).Seconds()), Interval: round3(iv),
		Running:  r.running.Load(),
		Up:       r.st.Up.Load(),
		Counters: c, Rates: map[string]float64{}, Gauges: cur.Gauges, Timings: map[string]Timing{},
	}
	for k, v := range c {
		if iv > 0 {
			rep.Rates[k] = round3(float64(v-r.prev.Counters[k]) / iv)
		}
	}
	for k, h := range cur.Timings {
		d := since(h, r.prev.Timings[k])
		if d.Count == 0 {
			continue
		}
		rep.Timings[k] = Timing{Count: d.Count, P50: d.Quantile(0.5).Seconds(), P90: d.Quantile(0.9).Seconds(),
			P99: d.Quantile(0.99).Seconds(), Max: d.Quantile(math.Nextafter(1, 0)).Seconds()}
	}
	return rep
}

// since is the samples of cur not in prev, an earlier snapshot of the same
// histogram: bucket counts subtract. Its Min and Max are cur's, the bounds
// Quantile keeps to; a quantile is the middle of its bucket, as ever.
func since(cur, prev metrics.HistogramData) metrics.HistogramData {
	if prev.Count == 0 {
		return cur
	}
	d := metrics.HistogramData{Layout: cur.Layout, Min: cur.Min, Max: cur.Max}
	j := 0
	for _, b := range cur.Buckets {
		n := b[1]
		for j < len(prev.Buckets) && prev.Buckets[j][0] < b[0] {
			j++
		}
		if j < len(prev.Buckets) && prev.Buckets[j][0] == b[0] {
			n -= prev.Buckets[j][1]
		}
		if n > 0 {
			d.Buckets = append(d.Buckets, [2]int64{b[0], n})
			d.Count += n
		}
	}
	return d
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// line is the report as one line: devices, messages a second each way,
// errors, and the p99 of each timing over the interval.
func (rep Report) line() string {
	var b strings.Builder
	el := time.Duration(rep.Elapsed * float64(time.Second))
	if rep.Interval >= 1 {
		el = el.Round(time.Second)
	} else {
		el = el.Round(100 * time.Millisecond)
	}
	fmt.Fprintf(&b, "%s  %d up, %d running  sent %s/s  recv %s/s  errors %d",
		el, rep.Up, rep.Running,
		fmtRate(rep.Rates["msgs.sent"]), fmtRate(rep.Rates["msgs.recv"]), rep.Counters["errors"])
	names := make([]string, 0, len(rep.Timings))
	for k := range rep.Timings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "  %s p99 %s", k, metrics.FormatDuration(time.Duration(rep.Timings[k].P99*float64(time.Second))))
	}
	return b.String()
}

func fmtRate(r float64) string {
	if r >= 10 || r == math.Trunc(r) {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.1f", r)
}
