package script

import (
	"context"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/metrics"
)

// Stats are a fleet's metrics: the built-in ones looked up once, so the
// per-message path is an atomic add, and the set the Lua metrics module
// and conn:request add their own names to. The names are listed in
// docs/fleet.md; each is created (at zero) with the fleet, so a threshold
// such as `errors == 0` finds it even when nothing went wrong.
type Stats struct {
	Set *metrics.Set

	MsgsSent, BytesSent *metrics.Counter // msgs.sent, bytes.sent
	MsgsRecv, BytesRecv *metrics.Counter // msgs.recv, bytes.recv
	// Errors (errors) counts every failure a device saw: a connect that
	// failed (after its retries), a send that failed, a connection broken
	// by its peer or its framing, a request or an acknowledgement that
	// timed out, a device ended by a script error.
	Errors           *metrics.Counter
	ConnectAttempts  *metrics.Counter   // connect.attempts: each dial, retries included
	ConnectFailed    *metrics.Counter   // connect.failed: each dial (or MQTT CONNACK) that failed
	Connect          *metrics.Histogram // connect: each successful dial, TLS/WebSocket handshake included
	Reconnects       *metrics.Counter   // reconnects: a retry, or a dial after the device lost a connection
	DevicesStarted   *metrics.Counter   // devices.started (counted by the runner)
	DevicesConnected *metrics.Counter   // devices.connected: devices that opened (or accepted) a connection
	DevicesFailed    *metrics.Counter   // devices.failed (counted by the runner)
	DevicesStopped   *metrics.Counter   // devices.stopped (counted by the runner)

	Conns    atomic.Int64 // connections opened or accepted
	LastConn atomic.Int64 // unix nanoseconds of the latest connection opened
	// Up is how many devices have a connection open right now: the
	// live report's "devices up".
	Up atomic.Int64

	names sync.Map   // metric name → *named, for the Lua module
	reqs  sync.Map   // conn:request name → *requestMetrics
	mu    sync.Mutex // creating a name
	count int        // distinct names the scripts created
}

// Custom is how many names the scripts (and the protocol modules'
// timings, and conn:request) added to the built-in metrics.
func (s *Stats) Custom() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Kinds of metric, for the Lua module's checks.
const (
	kindCounter = "counter"
	kindGauge   = "gauge"
	kindTiming  = "timing"
)

// named is one metric of the set, whatever its kind.
type named struct {
	kind string
	c    *metrics.Counter
	g    *metrics.Gauge
	h    *metrics.Histogram
}

// MaxMetricNames bounds the distinct names the scripts of one fleet may
// create. A name per device id or per message (a common slip: the id in
// the name) would otherwise grow the summary and the memory without end;
// a thousand covers any honest set of measurements.
const MaxMetricNames = 1000

// NewStats creates the built-in metrics in set (a new set when nil).
func NewStats(set *metrics.Set) *Stats {
	if set == nil {
		set = metrics.NewSet()
	}
	s := &Stats{Set: set}
	for _, c := range []struct {
		p    **metrics.Counter
		name string
	}{
		{&s.MsgsSent, "msgs.sent"}, {&s.BytesSent, "bytes.sent"}, {&s.MsgsRecv, "msgs.recv"}, {&s.BytesRecv, "bytes.recv"},
		{&s.Errors, "errors"}, {&s.ConnectAttempts, "connect.attempts"}, {&s.ConnectFailed, "connect.failed"},
		{&s.Reconnects, "reconnects"}, {&s.DevicesStarted, "devices.started"}, {&s.DevicesConnected, "devices.connected"},
		{&s.DevicesFailed, "devices.failed"}, {&s.DevicesStopped, "devices.stopped"},
	} {
		*c.p = set.Counter(c.name)
		s.names.Store(c.name, &named{kind: kindCounter, c: *c.p})
	}
	s.Connect = set.Histogram("connect")
	s.names.Store("connect", &named{kind: kindTiming, h: s.Connect})
	return s
}

// metric is name's metric of the given kind, created the first time. A
// name already used for another kind, a malformed name, or one name too
// many is an error (the Lua module raises it).
func (s *Stats) metric(name, kind string) (*named, error) {
	if v, ok := s.names.Load(name); ok { // the per-message path: no allocation
		m := v.(*named)
		if m.kind != kind {
			return nil, fmt.Errorf("%q is a %s, not a %s", name, m.kind, kind)
		}
		return m, nil
	}
	if err := checkMetricName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.names.Load(name); ok { // created meanwhile
		m := v.(*named)
		if m.kind != kind {
			return nil, fmt.Errorf("%q is a %s, not a %s", name, m.kind, kind)
		}
		return m, nil
	}
	if s.count >= MaxMetricNames {
		return nil, fmt.Errorf("%q would be metric name %d of this fleet, over the limit of %d: a name is for a kind of measurement, not for a device or a message",
			name, s.count+1, MaxMetricNames)
	}
	s.count++
	m := &named{kind: kind}
	switch kind {
	case kindCounter:
		m.c = s.Set.Counter(name)
	case kindGauge:
		m.g = s.Set.Gauge(name)
	default:
		m.h = s.Set.Histogram(name)
	}
	s.names.Store(name, m)
	return m, nil
}

// statSuffixes are the last parts of a threshold's metric that name a
// statistic (rtt.p99, msgs.sent.rate): a metric named so could not be told
// apart from one.
var statSuffixes = map[string]bool{"p50": true, "p90": true, "p95": true, "p99": true, "p999": true,
	"max": true, "min": true, "mean": true, "count": true, "rate": true}

// maxNameLen bounds a metric name.
const maxNameLen = 100

// checkMetricName accepts dotted names of letters, digits and _ - : /
// (rtt, sensor.read_errors, cloud-ack, http:/api/v1), what a threshold
// can name.
func checkMetricName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("a metric name is 1 to %d characters, not %d", maxNameLen, len(name))
	}
	for _, part := range strings.Split(name, ".") {
		if part == "" {
			return fmt.Errorf("metric name %q: an empty part between dots", name)
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-:/", r)) {
				return fmt.Errorf("metric name %q: %q is not a letter, a digit or one of . _ - : /", name, r)
			}
		}
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 && statSuffixes[name[i+1:]] {
		return fmt.Errorf("metric name %q ends in .%s, which thresholds read as a statistic of %q", name, name[i+1:], name[:i])
	}
	return nil
}

// The Lua metrics module: metrics.count(name [, n]), metrics.observe(name,
// seconds), metrics.gauge(name, value). Every device of the fleet adds to
// the same metrics.

func metricOf(L *lua.LState, kind, fn string) *named {
	d := devOf(L)
	name := L.CheckString(1)
	m, err := d.env.stats().metric(name, kind)
	if err != nil {
		L.RaiseError("metrics.%s: %v", fn, err)
	}
	return m
}

// metrics.count(name [, n]): adds n (default 1; negative to track a
// level) to the counter name.
func luaMetricsCount(L *lua.LState) int {
	m := metricOf(L, kindCounter, "count")
	n := 1.0
	if L.GetTop() >= 2 {
		n = float64(L.CheckNumber(2))
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			L.ArgError(2, "a whole number expected")
		}
	}
	m.c.Add(int64(n))
	return 0
}

// metrics.observe(name, seconds): records a duration in the timing name.
func luaMetricsObserve(L *lua.LState) int {
	m := metricOf(L, kindTiming, "observe")
	sec := float64(L.CheckNumber(2))
	if sec < 0 || math.IsNaN(sec) || math.IsInf(sec, 0) {
		L.ArgError(2, "a duration in seconds, 0 or more, expected")
	}
	m.h.Observe(time.Duration(sec * float64(time.Second)))
	return 0
}

// metrics.gauge(name, value): sets the gauge name (one value for the
// fleet: the latest set wins).
func luaMetricsGauge(L *lua.LState) int {
	m := metricOf(L, kindGauge, "gauge")
	v := float64(L.CheckNumber(2))
	if math.IsNaN(v) || math.IsInf(v, 0) {
		L.ArgError(2, "a finite number expected")
	}
	m.g.Set(v)
	return 0
}

// request is a conn:request waiting for its reply: the reply (or the
// failure) records the round trip.
type request struct {
	start time.Time
	rm    *requestMetrics
}

// requestMetrics are the metrics of one conn:request name: the round
// trips (NAME), the requests made (NAME.total), those that timed out
// (NAME.timeouts) and those that failed otherwise (NAME.failed). The
// counters exist from the first request, so `rtt.timeouts == 0` holds
// rather than finding nothing.
type requestMetrics struct {
	rtt                     *metrics.Histogram
	total, timeouts, failed *metrics.Counter
}

// requestMetrics looks up (creating them the first time) name's metrics.
func (s *Stats) requestMetrics(name string) (*requestMetrics, error) {
	if v, ok := s.reqs.Load(name); ok {
		return v.(*requestMetrics), nil
	}
	h, err := s.metric(name, kindTiming)
	if err != nil {
		return nil, err
	}
	rm := &requestMetrics{rtt: h.h}
	for _, c := range []struct {
		p      **metrics.Counter
		suffix string
	}{{&rm.total, ".total"}, {&rm.timeouts, ".timeouts"}, {&rm.failed, ".failed"}} {
		m, err := s.metric(name+c.suffix, kindCounter)
		if err != nil {
			return nil, err
		}
		*c.p = m.c
	}
	s.reqs.Store(name, rm)
	return rm, nil
}

// done records the request's outcome: a reply's round trip, or a failure.
func (r *request) done(st *Stats, err string) {
	switch err {
	case "":
		r.rm.rtt.Observe(time.Since(r.start))
	case "timeout":
		r.rm.timeouts.Add(1)
		st.Errors.Add(1)
	case "closed": // the peer hung up instead of answering
		r.rm.failed.Add(1)
		st.Errors.Add(1)
	default: // a broken framing or a reset: counted in errors where it happened
		r.rm.failed.Add(1)
	}
}

// dial is link.Dial, timed and counted: connect.attempts, and the time of
// the dial (TLS and WebSocket handshakes included) in connect, or
// connect.failed. A dial cut short because the device was stopped (the
// fleet's deadline, Ctrl-C) is no attempt: it neither failed nor took
// that long. A UDP (or unixgram) dial sends nothing, so it is not
// counted either: coap.request, which opens a socket per request, would
// fill connect with zeros.
func (d *Device) dial(ctx context.Context, a link.Addr, o *link.Options) (net.Conn, error) {
	start := time.Now()
	nc, err := link.Dial(ctx, a, o)
	if d.ctx.Err() != nil || a.Packet() {
		return nc, err
	}
	st := d.env.stats()
	st.ConnectAttempts.Add(1)
	if err != nil {
		st.ConnectFailed.Add(1)
	} else {
		st.Connect.Observe(time.Since(start))
	}
	return nc, err
}

// dialing notes a connect call: the first after one of the device's
// connections ended is a reconnect.
func (d *Device) dialing() {
	if d.lost {
		d.lost = false
		d.env.stats().Reconnects.Add(1)
	}
}

// failed counts an error the script is told of, unless the device is
// being stopped (a stop is not the peer's fault).
func (d *Device) failed() {
	if d.ctx.Err() == nil {
		d.env.stats().Errors.Add(1)
	}
}

// observe records the time since start in the timing name, unless the
// script took the name for another kind (or took all the names).
func (s *Stats) observe(name string, start time.Time) {
	if m, err := s.metric(name, kindTiming); err == nil {
		m.h.Observe(time.Since(start))
	}
}
