package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/wirecat-dev/wirecat/metrics"
	"github.com/wirecat-dev/wirecat/script/sim"
	"github.com/wirecat-dev/wirecat/units"
)

// MetricsFlags are simulate's questions to its fleet (docs/fleet.md):
// live reports, the summary file, thresholds.
type MetricsFlags struct {
	Report     units.Duration `group:"Metrics" placeholder:"DUR" help:"Every DUR, report devices up, messages/s each way, errors and each timing's p99: a line on stderr, or JSON lines on stdout with -o json."`
	ReportFile string         `group:"Metrics" type:"path" placeholder:"FILE" help:"Also write each report to FILE as a JSON line (every --report, default 1s)."`
	Summary    string         `group:"Metrics" type:"path" placeholder:"FILE" help:"Write the metrics at the end (also on Ctrl-C) to FILE as JSON; 'wirecat summary' merges such files."`
	Threshold  []string       `group:"Metrics" sep:"none" placeholder:"EXPR" help:"Check EXPR on the metrics at the end, e.g. 'rtt.p99 < 50ms', 'errors == 0', 'connect.failed < 1%'; repeatable; any unmet exits 3."`
}

// minReport bounds --report from below: a report takes a snapshot of
// every timing (thousands of buckets each), which is fine ten times a
// second, not a thousand.
const minReport = 100 * time.Millisecond

// fleetMetrics is a run's metrics set and what the flags do with it.
type fleetMetrics struct {
	flags      MetricsFlags
	set        *metrics.Set
	thresholds []metrics.Threshold
	summary    *os.File // created before the fleet starts
	reports    *os.File // --report-file
	written    sync.Once
	// Shard is the summary's "K/N" when the run is one shard of a fleet.
	Shard string
}

// prepare checks the flags before anything starts: a threshold with a
// syntax error is a usage error, and the files are created now, so a path
// that cannot be written fails at once rather than after the run.
func (f MetricsFlags) prepare(app *App) (*fleetMetrics, error) {
	fm := &fleetMetrics{flags: f, set: metrics.NewSet()}
	ts, err := metrics.ParseThresholds(f.Threshold)
	if err != nil {
		return nil, usage(fmt.Errorf("--threshold: %w", err))
	}
	fm.thresholds = ts
	if f.Report < 0 || f.Report > 0 && f.Report.D() < minReport {
		return nil, usage(fmt.Errorf("--report %v: want %v or more", f.Report.D(), minReport))
	}
	if f.Summary != "" {
		if fm.summary, err = os.Create(f.Summary); err != nil {
			return nil, fmt.Errorf("--summary: %w", err)
		}
		// A signal's forced exit still writes it, from the figures so far.
		app.AtExit.Add(func() { fm.writeSummary(fm.snapshot()) })
	}
	if f.ReportFile != "" {
		if fm.reports, err = os.Create(f.ReportFile); err != nil {
			fm.close()
			return nil, fmt.Errorf("--report-file: %w", err)
		}
	}
	return fm, nil
}

// configure sets the run's metrics and reports: JSON lines go to stdout
// with -o json (beside the events, as "event":"report") and to
// --report-file; otherwise the report is a line on stderr.
func (fm *fleetMetrics) configure(cfg *sim.Config, jsonOut bool, stdout io.Writer) {
	cfg.Metrics = fm.set
	every := fm.flags.Report.D()
	if every == 0 && fm.reports == nil {
		return
	}
	if every == 0 {
		every = time.Second
	}
	cfg.Report = every
	var outs []io.Writer
	if fm.flags.Report > 0 && jsonOut {
		outs = append(outs, stdout)
	} else if fm.flags.Report > 0 {
		cfg.ReportText = true
	}
	if fm.reports != nil {
		outs = append(outs, fm.reports)
	}
	if len(outs) > 0 {
		cfg.ReportJSON = io.MultiWriter(outs...)
	}
}

// snapshot is the figures now, as the summary file has them.
func (fm *fleetMetrics) snapshot() metrics.Summary {
	s := fm.set.Summary()
	s.Shard = fm.Shard
	return s
}

// writeSummary writes s to --summary once: the end of the run, or the
// exit hook's snapshot when a signal forces the exit first.
func (fm *fleetMetrics) writeSummary(s metrics.Summary) (err error) {
	if fm.summary == nil {
		return nil
	}
	fm.written.Do(func() {
		err = s.WriteJSON(fm.summary)
		if cerr := fm.summary.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			err = fmt.Errorf("--summary: %w", err)
		}
	})
	return err
}

// close ends what prepare opened. A summary file still unwritten means the
// run failed before it had figures: the empty file goes, rather than stay
// for `wirecat summary` to trip on.
func (fm *fleetMetrics) close() {
	if fm.summary != nil {
		fm.written.Do(func() {
			fm.summary.Close()
			os.Remove(fm.summary.Name())
		})
	}
	if fm.reports != nil {
		fm.reports.Close()
	}
}

// finish ends the run's metrics: the table on stderr (when the metrics
// were asked for, or the script made some of its own), the summary file,
// the thresholds' verdicts. Its error is the exit: a summary that could
// not be written (1), a threshold not met (3).
func (fm *fleetMetrics) finish(sum sim.Summary, note func(string), verdicts io.Writer) error {
	s := sum.Metrics
	if s.Version == 0 {
		// Stopped before any device ran (during --start-at's wait): sim
		// leaves Metrics empty, but the set holds the built-in metrics at
		// 0, and the file must still be one that `wirecat summary` reads.
		s = fm.set.Summary()
	}
	s.Shard = fm.Shard
	if fm.summary != nil || fm.reports != nil || fm.flags.Report > 0 || len(fm.thresholds) > 0 || sum.Custom > 0 {
		for _, line := range strings.Split(strings.TrimRight(s.Text(), "\n"), "\n") {
			note(line)
		}
	}
	if fm.reports != nil {
		fm.reports.Close()
	}
	werr := fm.writeSummary(s)
	var buf bytes.Buffer
	terr := metrics.CheckAll(&buf, s, fm.thresholds)
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line != "" {
			io.WriteString(verdicts, "wirecat: "+line) // the answer asked for: -q does not hide it
		}
	}
	if werr != nil {
		return werr
	}
	var unmet *metrics.UnmetError
	if errors.As(terr, &unmet) {
		return silent{exitUnmet}
	}
	return nil
}
