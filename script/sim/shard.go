package sim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Shard is the part of a fleet one process runs: of the --count devices,
// shard K of N runs the ids K+1, K+1+N, K+1+2N, ... (device.id counts from
// 1). Dealing the ids out like cards, rather than cutting the fleet into
// blocks, keeps every shard busy over the whole --ramp: each one starts its
// devices at 1/N of the fleet's rate from the first moment, so no machine
// idles while another is still ramping, and a source list (-s) spreads
// every shard's devices over the addresses in the same way. The zero Shard
// is the whole fleet.
type Shard struct {
	K, N int
}

// Whole reports whether s is the whole fleet (no --shard, or 0/1).
func (s Shard) Whole() bool { return s.N <= 1 }

// First is the first device id of the shard; Step is the distance to the
// next one.
func (s Shard) First() int { return s.K + 1 }

// Step is the distance between two device ids of the shard.
func (s Shard) Step() int { return max(s.N, 1) }

// Size is how many of count devices the shard runs.
func (s Shard) Size(count int) int {
	if count < s.First() {
		return 0
	}
	return (count-s.First())/s.Step() + 1
}

// Has reports whether the shard runs device id.
func (s Shard) Has(id int) bool { return id >= 1 && (id-1)%s.Step() == s.K }

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.K, s.N) }

// ShardEnv are the variables --shard auto/N reads K from, in this order:
// a Kubernetes Indexed Job's pod index, a Nomad allocation's index, then
// wirecat's own for anything else (a shell loop, systemd, another
// scheduler).
var ShardEnv = []string{"JOB_COMPLETION_INDEX", "NOMAD_ALLOC_INDEX", "WIRECAT_SHARD"}

// ParseShard reads --shard: "K/N" with K from 0, or "auto/N" with K from
// the first of ShardEnv that getenv has set. count is --count, the whole
// fleet: a shard with no device is an error, not an idle process.
func ParseShard(s string, count int, getenv func(string) string) (Shard, error) {
	k, n, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("--shard %q: want K/N (K from 0) or auto/N, e.g. 0/4", s)
	}
	N, err := strconv.Atoi(n)
	if err != nil {
		return Shard{}, fmt.Errorf("--shard %q: N %q is not a number", s, n)
	}
	if N < 1 {
		return Shard{}, fmt.Errorf("--shard %q: N must be at least 1", s)
	}
	if N > count {
		return Shard{}, fmt.Errorf("--shard %q: %d shards for --count %d would leave some with no device", s, N, count)
	}
	from := "" // where K came from, for the errors
	if k == "auto" {
		for _, name := range ShardEnv {
			if v := getenv(name); v != "" {
				k, from = v, " from $"+name
				break
			}
		}
		if from == "" {
			return Shard{}, fmt.Errorf("--shard %q: none of %s is set (set one to this shard's index, 0 to %d)",
				s, strings.Join(ShardEnv, ", "), N-1)
		}
	}
	K, err := strconv.Atoi(k)
	if err != nil {
		return Shard{}, fmt.Errorf("--shard %q: K %q%s is not a number", s, k, from)
	}
	if K < 0 || K >= N {
		return Shard{}, fmt.Errorf("--shard %q: K %d%s is out of range (0 to %d)", s, K, from, N-1)
	}
	return Shard{K: K, N: N}, nil
}

// ParseStartAt reads --start-at: an RFC 3339 time (2026-11-29T21:30:00Z,
// or with an offset), or a clock time HH:MM[:SS] meaning that time today
// in UTC. UTC, not the local zone, so shards on machines with different
// zones (a laptop, a pod built FROM scratch with no zone data) agree.
func ParseStartAt(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"15:04:05", "15:04"} {
		if c, err := time.Parse(layout, s); err == nil {
			y, m, d := now.UTC().Date()
			return time.Date(y, m, d, c.Hour(), c.Minute(), c.Second(), 0, time.UTC), nil
		}
	}
	return time.Time{}, errors.New("--start-at " + strconv.Quote(s) + ": want an RFC 3339 time (2026-11-29T21:30:00Z) or a clock time in UTC (21:30:00)")
}
