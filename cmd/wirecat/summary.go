package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/wirecat-dev/wirecat/metrics"
)

// SummaryCmd is `wirecat summary`.
type SummaryCmd struct {
	Files     []string `arg:"" placeholder:"FILE" predictor:"summary" help:"Summary files (simulate --summary wrote them); - is stdin."`
	Output    string   `short:"o" placeholder:"MODE" enum:"text,json" default:"text" help:"Print the merged summary as text, or as a summary file (json)."`
	Threshold []string `placeholder:"EXPR" sep:"none" help:"Check METRIC OP VALUE on the merged figures, e.g. 'rtt.p99 < 50ms', 'errors == 0', 'connect.failed < 1%' (repeatable)."`
}

func (c *SummaryCmd) Help() string {
	return `Reads the JSON summaries that simulate --summary writes, one per shard of a
fleet or one per run, merges them exactly (counters and histograms add:
the merged p99 is the p99 of every sample), prints the counts, rates and
p50/p90/p99/max of the whole, and checks each --threshold on it.
With -o json the merged summary goes to stdout as a summary file, and the
threshold lines to stderr. Metrics, file format and threshold language:
docs/fleet.md. Exits 0 when every threshold is met, 3 when one is not, 2 for
a bad threshold or a missing file (before reading any), 1 for a damaged one.

Examples:

    wirecat summary shard-0.json shard-1.json
    wirecat summary shard-*.json --threshold 'rtt.p99 < 50ms'
    wirecat summary shard-*.json --threshold 'connect.failed < 1%'
    wirecat summary shard-*.json -o json > fleet.json`
}

func (c *SummaryCmd) Run(app *App) error {
	ts, err := metrics.ParseThresholds(c.Threshold)
	if err != nil {
		return hinted{usage(err), "a threshold is METRIC OP VALUE, e.g. 'rtt.p99 < 50ms' (see docs/fleet.md)"}
	}
	for _, f := range c.Files { // a missing file is a usage error, before reading any
		if f != "-" {
			f, err := os.Open(f)
			if err != nil {
				return inputFileError(err)
			}
			f.Close()
		}
	}
	parts := make([]metrics.Summary, 0, len(c.Files))
	for _, f := range c.Files {
		s, err := readSummaryFile(app, f)
		if err != nil {
			return err
		}
		parts = append(parts, s)
	}
	merged, err := metrics.Merge(parts...)
	var se *metrics.ShardError
	switch {
	case errors.As(err, &se) && se.Shard == se.Earlier:
		return fmt.Errorf("%s and %s both hold shard %s: one fleet's shards each once", c.Files[se.EarlierPart], c.Files[se.Part], se.Shard)
	case errors.As(err, &se):
		return fmt.Errorf("%s holds shard %s, %s shard %s: shards of different fleets", c.Files[se.Part], se.Shard, c.Files[se.EarlierPart], se.Earlier)
	case err != nil:
		return err
	}
	thresholdsTo := app.Stdout
	if c.Output == "json" {
		if err := merged.WriteJSON(app.Stdout); err != nil {
			return err
		}
		thresholdsTo = app.Stderr
	} else {
		io.WriteString(app.Stdout, merged.Text())
	}
	if err := metrics.CheckAll(thresholdsTo, merged, ts); err != nil {
		var u *metrics.UnmetError
		if errors.As(err, &u) {
			return unmetError{err}
		}
		return err
	}
	return nil
}

// readSummaryFile reads one summary, naming the file in any error.
func readSummaryFile(app *App, name string) (metrics.Summary, error) {
	var r io.Reader = app.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return metrics.Summary{}, inputFileError(err)
		}
		defer f.Close()
		r = f
	}
	s, err := metrics.ReadSummary(r)
	if err != nil {
		return metrics.Summary{}, hinted{fmt.Errorf("summary %s: %w", name, err),
			"a summary file is what simulate --summary FILE writes"}
	}
	return s, nil
}
