package sim

import (
	"context"
	"testing"
	"time"
)

// Devices that connect, send and hang up at once are done before the
// built-in sink's accept loop has taken them all: their connections wait
// in the listener's backlog when the fleet ends, and the sink still reads
// every one before it closes.
func TestSinkReadsTheBacklogAtTheEnd(t *testing.T) {
	prog := load(t, writeScript(t, reportScript))
	for round := range 5 {
		var got arrivals
		const count = 300
		sum, err := Run(context.Background(), Config{Program: prog, Count: count, Seed: 1, Sink: &got, Duration: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got.byID(t)); n != count || sum.Failed != 0 {
			t.Fatalf("round %d: the sink read %d of %d devices (%d failed)", round, n, count, sum.Failed)
		}
	}
}
