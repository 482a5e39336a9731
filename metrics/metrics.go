// Package metrics counts what a fleet of simulated devices does: counters,
// gauges and timing histograms, a summary of them that shard processes
// write as JSON and merge exactly, and thresholds checked against it
// (`rtt.p99 < 50ms`).
package metrics

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Counter is a count that only grows (a Lua script may add a negative n;
// nothing stops it). Safe for concurrent use; the zero value is 0.
type Counter struct{ v atomic.Int64 }

// Add adds n.
func (c *Counter) Add(n int64) { c.v.Add(n) }

// Load returns the count.
func (c *Counter) Load() int64 { return c.v.Load() }

// Gauge is a level that goes up and down (devices up, a queue's length).
// Safe for concurrent use; the zero value is 0. A level is always a finite
// number, as the summary file (JSON) can only hold those: a NaN or an
// infinity (a script's 0/0) leaves the level as it was.
type Gauge struct{ bits atomic.Uint64 }

// Set sets the level to v.
func (g *Gauge) Set(v float64) {
	if finite(v) {
		g.bits.Store(math.Float64bits(v))
	}
}

// Add moves the level by d (negative: down).
func (g *Gauge) Add(d float64) {
	for {
		old := g.bits.Load()
		v := math.Float64frombits(old) + d
		if !finite(v) || g.bits.CompareAndSwap(old, math.Float64bits(v)) {
			return
		}
	}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Load returns the level.
func (g *Gauge) Load() float64 { return math.Float64frombits(g.bits.Load()) }

// Set is a fleet's named metrics. Safe for concurrent use. Looking a name
// up reads an immutable map through an atomic pointer: no lock and no
// allocation once the name exists; creating a name copies the maps, which
// happens once per name.
type Set struct {
	started time.Time
	mu      sync.Mutex // held to create a name
	names   atomic.Pointer[names]
}

// names is one version of a Set's maps, never changed once published.
type names struct {
	counters map[string]*Counter
	gauges   map[string]*Gauge
	timings  map[string]*Histogram
}

// NewSet returns an empty set whose summary counts time from now.
func NewSet() *Set {
	s := &Set{started: time.Now()}
	s.names.Store(&names{})
	return s
}

// Counter returns the counter named name, made at 0 the first time.
func (s *Set) Counter(name string) *Counter {
	if c, ok := s.names.Load().counters[name]; ok {
		return c
	}
	return getOrAdd(s, name, func(n *names) *map[string]*Counter { return &n.counters })
}

// Gauge returns the gauge named name, made at 0 the first time.
func (s *Set) Gauge(name string) *Gauge {
	if g, ok := s.names.Load().gauges[name]; ok {
		return g
	}
	return getOrAdd(s, name, func(n *names) *map[string]*Gauge { return &n.gauges })
}

// Histogram returns the timing named name, made empty the first time.
func (s *Set) Histogram(name string) *Histogram {
	if h, ok := s.names.Load().timings[name]; ok {
		return h
	}
	return getOrAdd(s, name, func(n *names) *map[string]*Histogram { return &n.timings })
}

// getOrAdd is the slow path of the lookups: under the lock, look again,
// then publish a copy of the maps with name added to the one field picks.
func getOrAdd[T any](s *Set, name string, field func(*names) *map[string]*T) *T {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.names.Load()
	if v, ok := (*field(cur))[name]; ok {
		return v
	}
	next := *cur // the other two maps are shared: they are never written
	old := *field(cur)
	m := make(map[string]*T, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	v := new(T)
	m[name] = v
	*field(&next) = m
	s.names.Store(&next)
	return v
}

// Summary returns a snapshot of every metric, Elapsed counting from
// NewSet. Each metric is read atomically, not the set as a whole: taken
// while devices run, a counter may be a message ahead of another.
func (s *Set) Summary() Summary {
	n := s.names.Load()
	sum := Summary{
		Version:  Version,
		Started:  s.started.Round(0).UTC(),
		Elapsed:  time.Since(s.started).Seconds(),
		Counters: make(map[string]int64, len(n.counters)),
		Gauges:   make(map[string]float64, len(n.gauges)),
		Timings:  make(map[string]HistogramData, len(n.timings)),
	}
	for k, c := range n.counters {
		sum.Counters[k] = c.Load()
	}
	for k, g := range n.gauges {
		sum.Gauges[k] = g.Load()
	}
	for k, h := range n.timings {
		sum.Timings[k] = h.Data()
	}
	return sum
}
