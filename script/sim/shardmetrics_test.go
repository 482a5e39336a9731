package sim

import (
	"context"
	"testing"
	"time"
)

// With --start-at, a shard's metrics count from the fleet's start, not
// from the wait before it: the rates of merged shards are the fleet's.
func TestStartAtMetricsCountFromTheStart(t *testing.T) {
	prog := load(t, writeScript(t, `sleep(10)`))
	at := time.Now().Add(700 * time.Millisecond)
	sum, err := Run(context.Background(), Config{Program: prog, Count: 2, Shard: Shard{1, 2}, StartAt: at, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Metrics.Started.Before(at) {
		t.Errorf("the summary starts %v before --start-at", at.Sub(sum.Metrics.Started))
	}
	if e := sum.Metrics.Elapsed; e < 0.25 || e > 0.6 {
		t.Errorf("the summary covers %.2fs, want the 0.3s the devices ran", e)
	}
	if sum.Metrics.Counters["devices.started"] != 1 {
		t.Errorf("devices.started %d, want shard 1/2's one", sum.Metrics.Counters["devices.started"])
	}
}
