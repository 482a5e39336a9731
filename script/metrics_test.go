package script

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/testpeer"
)

// delayedEcho answers each line after delay, on a connection of its own
// per client; it closes a connection when it reads "bye".
func delayedEcho(t *testing.T, delay time.Duration) string {
	t.Helper()
	return testpeer.TCP(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil || line == "bye\n" {
				return
			}
			if line == "mute\n" {
				continue // a request nobody answers
			}
			time.Sleep(delay)
			c.Write([]byte(line))
		}
	})
}

// rttSlack is what a loaded machine may add to a round trip on loopback.
const rttSlack = 250 * time.Millisecond

// TestRequestRTT: conn:request's round trips against a peer with a known
// delay land in the rtt timing, between the delay and the delay plus a
// loopback's slack; an unanswered one counts as a timeout and an error.
func TestRequestRTT(t *testing.T) {
	const delay = 40 * time.Millisecond
	addr := delayedEcho(t, delay)
	st := NewStats(nil)
	r := run(t, fmt.Sprintf(`
local c = assert(net.connect(%q, {frame = "line"}))
for i = 1, 20 do
  assert(c:request("ping " .. i) == "ping " .. i)
end
local reply, err = c:request("mute", 0.2)
print(reply, err)
assert(c:request("named", {timeout = 5, name = "cloud.ack"}) == "named")
assert(c:request("again", 5, "cloud.ack") == "again")
`, addr), 20*time.Second, &Env{Stats: st})
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.errOut)
	}
	if r.out != "nil\ttimeout\n" {
		t.Errorf("the unanswered request printed %q", r.out)
	}
	sum := st.Set.Summary()
	rtt := sum.Timings["rtt"]
	if rtt.Count != 20 {
		t.Fatalf("rtt count %d, want 20", rtt.Count)
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		// Never under the delay (less the histogram's 1%), and over it by
		// no more than the slack of a loaded shared machine (under -race,
		// load averages of 20 were seen to add 40ms).
		if got := rtt.Quantile(q); got < delay*99/100 || got > delay+rttSlack {
			t.Errorf("rtt p%v = %v, want %v to %v", q*100, got, delay, delay+rttSlack)
		}
	}
	if rtt.Min < delay {
		t.Errorf("rtt min %v is below the injected delay %v", rtt.Min, delay)
	}
	want := map[string]int64{"rtt.total": 21, "rtt.timeouts": 1, "rtt.failed": 0, "errors": 1,
		"cloud.ack.total": 2, "cloud.ack.timeouts": 0, "msgs.sent": 23, "msgs.recv": 22,
		"connect.attempts": 1, "connect.failed": 0, "devices.connected": 1}
	for k, v := range want {
		if got, ok := sum.Counters[k]; !ok || got != v {
			t.Errorf("%s = %d (present %v), want %d", k, got, ok, v)
		}
	}
	if n := sum.Timings["cloud.ack"].Count; n != 2 {
		t.Errorf("cloud.ack count %d, want 2", n)
	}
	if n := sum.Timings["connect"].Count; n != 1 {
		t.Errorf("connect count %d, want 1", n)
	}
}

// TestRequestClosed: a peer that hangs up instead of answering fails the
// request with "closed", counted in NAME.failed and errors.
func TestRequestClosed(t *testing.T) {
	addr := delayedEcho(t, 0)
	st := NewStats(nil)
	r := run(t, fmt.Sprintf(`
local c = assert(net.connect(%q, {frame = "line"}))
print(c:request("bye"))
`, addr), 10*time.Second, &Env{Stats: st})
	if r.err != nil || r.out != "nil\tclosed\n" {
		t.Fatalf("err %v, printed %q", r.err, r.out)
	}
	c := st.Set.Summary().Counters
	if c["rtt.failed"] != 1 || c["errors"] != 1 || c["rtt.timeouts"] != 0 {
		t.Errorf("counters %v", c)
	}
}

// TestLuaMetrics: metrics.count, observe and gauge add to the fleet's set;
// bad names, kinds and values are script errors naming the cause.
func TestLuaMetrics(t *testing.T) {
	st := NewStats(nil)
	r := run(t, `
metrics.count("readings")
metrics.count("readings", 4)
metrics.count("sessions", -1)
metrics.observe("sensor.read", 0.25)
metrics.observe("sensor.read", 0.5)
metrics.gauge("queue_depth", 7.5)
metrics.count("errors", 2) -- the built-in counter takes the script's errors too
`, 5*time.Second, &Env{Stats: st})
	if r.err != nil {
		t.Fatal(r.err)
	}
	sum := st.Set.Summary()
	if sum.Counters["readings"] != 5 || sum.Counters["sessions"] != -1 || sum.Counters["errors"] != 2 {
		t.Errorf("counters %v", sum.Counters)
	}
	if h := sum.Timings["sensor.read"]; h.Count != 2 || h.Max < 499*time.Millisecond || h.Max > 501*time.Millisecond {
		t.Errorf("sensor.read %+v", h)
	}
	if sum.Gauges["queue_depth"] != 7.5 {
		t.Errorf("gauges %v", sum.Gauges)
	}
	if st.Custom() != 4 {
		t.Errorf("%d custom names, want 4", st.Custom())
	}

	for _, c := range []struct{ src, want string }{
		{`metrics.count("a b")`, `metrics.count: metric name "a b": ' ' is not a letter, a digit or one of . _ - : /`},
		{`metrics.count("rtt.p99")`, `ends in .p99, which thresholds read as a statistic of "rtt"`},
		{`metrics.count("x..y")`, `an empty part between dots`},
		{`metrics.count("")`, `a metric name is 1 to 100 characters`},
		{`metrics.observe("connect", -1)`, `0 or more`},
		{`metrics.count("n", 1.5)`, `a whole number expected`},
		{`metrics.gauge("g", 0/0)`, `a finite number expected`},
		{`metrics.count("t"); metrics.observe("t", 1)`, `metrics.observe: "t" is a counter, not a timing`},
		{`metrics.gauge("msgs.sent", 1)`, `"msgs.sent" is a counter, not a gauge`},
	} {
		r := run(t, c.src, 5*time.Second, nil)
		if r.err == nil || !strings.Contains(r.err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.src, r.err, c.want)
		}
	}
}

// TestMetricNamesBounded: a fleet's scripts may make MaxMetricNames
// names; the next is an error saying so, not more memory.
func TestMetricNamesBounded(t *testing.T) {
	st := NewStats(nil)
	r := run(t, `
for i = 1, 1000 do metrics.count("device" .. i) end
metrics.count("device1") -- a name already made is still fine
metrics.count("one.too.many")
`, 10*time.Second, &Env{Stats: st})
	if r.err == nil || !strings.Contains(r.err.Error(), `"one.too.many" would be metric name 1001 of this fleet, over the limit of 1000`) {
		t.Fatalf("got %v", r.err)
	}
	if n := len(st.Set.Summary().Counters); n != 1000+12 {
		t.Errorf("%d counters, want the 1000 names and the 12 built-in ones", n)
	}
}

// TestConnectMetrics: each dial is an attempt; a refused one counts in
// connect.failed and errors; a dial after a lost connection, and each
// retry, is a reconnect.
func TestConnectMetrics(t *testing.T) {
	addr := delayedEcho(t, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	st := NewStats(nil)
	r := run(t, fmt.Sprintf(`
local c = assert(net.connect(%q, {frame = "line"}))
c:close()
c = assert(net.connect(%q, {frame = "line"})) -- a reconnect
local other = assert(net.connect(%q, {frame = "line"})) -- a second connection, not a reconnect
print(net.connect(%q, {retry = 2}))
`, addr, addr, addr, refused), 20*time.Second, &Env{Stats: st})
	if r.err != nil {
		t.Fatal(r.err)
	}
	c := st.Set.Summary().Counters
	want := map[string]int64{"connect.attempts": 6, "connect.failed": 3, "reconnects": 3, "errors": 1, "devices.connected": 1}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, c[k], v, c)
		}
	}
	if n := st.Set.Summary().Timings["connect"].Count; n != 3 {
		t.Errorf("connect timing count %d, want 3", n)
	}
	if st.Up.Load() != 0 {
		t.Errorf("%d devices up after the device ended", st.Up.Load())
	}
}

// TestMQTTAckTimings: QoS 1 and 2 publishes record the broker's
// acknowledgement times, and the connect through CONNACK.
func TestMQTTAckTimings(t *testing.T) {
	addr := mosquitto(t)
	st := NewStats(nil)
	r := run(t, fmt.Sprintf(`
local c = assert(mqtt.connect(%q))
for i = 1, 5 do assert(c:publish("t/acks", "x", {qos = 1})) end
for i = 1, 3 do assert(c:publish("t/acks", "y", {qos = 2})) end
assert(c:publish("t/acks", "z"))
c:disconnect()
`, addr), 10*time.Second, &Env{Stats: st})
	if r.err != nil {
		t.Fatal(r.err)
	}
	tm := st.Set.Summary().Timings
	for k, n := range map[string]int64{"mqtt.puback": 5, "mqtt.pubcomp": 3, "mqtt.connect": 1, "connect": 1} {
		if tm[k].Count != n {
			t.Errorf("%s count %d, want %d", k, tm[k].Count, n)
		}
	}
}

// TestLuaMetricsConcurrent: devices on many goroutines count into one set
// without losing an add (run with -race too).
func TestLuaMetricsConcurrent(t *testing.T) {
	p, err := Compile("m.lua", []byte(`for i = 1, 200 do metrics.count("hits"); metrics.observe("lat", i / 1000) end`))
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Count: 8, Stats: NewStats(nil)}
	var wg sync.WaitGroup
	for id := 1; id <= 8; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := contextTimeout(10 * time.Second)
			defer cancel()
			if err := p.Run(ctx, id, env); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	sum := env.Stats.Set.Summary()
	if sum.Counters["hits"] != 1600 || sum.Timings["lat"].Count != 1600 {
		t.Errorf("hits %d, lat count %d, want 1600 each", sum.Counters["hits"], sum.Timings["lat"].Count)
	}
}

// BenchmarkLuaMetricsCount is the cost of metrics.count from a script,
// the name already made (no allocation in the lookup).
func BenchmarkLuaMetricsCount(b *testing.B) {
	st := NewStats(nil)
	st.metric("hits", kindCounter) // made once, before the measure
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m, err := st.metric("hits", kindCounter)
		if err != nil {
			b.Fatal(err)
		}
		m.c.Add(1)
	}
}

// TestMetricLookupsDoNotAllocate: once a name exists, finding it again (a
// metrics.* call, a conn:request) allocates nothing: they run per message.
func TestMetricLookupsDoNotAllocate(t *testing.T) {
	st := NewStats(nil)
	if _, err := st.requestMetrics("rtt"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.metric("hits", kindCounter); err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(1000, func() {
		rm, _ := st.requestMetrics("rtt")
		rm.total.Add(1)
		m, _ := st.metric("hits", kindCounter)
		m.c.Add(1)
	})
	if n != 0 {
		t.Errorf("%v allocations per lookup", n)
	}
}

// BenchmarkLuaMetricsCalls is what a script pays per message for counting
// and timing it: metrics.count and metrics.observe from Lua, minus the
// loop's own cost (the "loop" case).
func BenchmarkLuaMetricsCalls(b *testing.B) {
	for _, c := range []struct{ name, body string }{
		{"loop", `local x = 0.001 * i`},
		{"count+observe", `metrics.count("readings"); metrics.observe("sensor.read", 0.001 * i)`},
		{"local-count+observe", `count("readings"); observe("sensor.read", 0.001 * i)`},
	} {
		b.Run(c.name, func(b *testing.B) {
			src := fmt.Sprintf("local count, observe = metrics.count, metrics.observe\nfor i = 1, %d do %s end", b.N, c.body)
			p, err := Compile("bench.lua", []byte(src))
			if err != nil {
				b.Fatal(err)
			}
			env := &Env{Count: 1, Stats: NewStats(nil)}
			ctx, cancel := contextTimeout(time.Minute)
			defer cancel()
			b.ReportAllocs()
			b.ResetTimer()
			if err := p.Run(ctx, 1, env); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// TestRequestArgs: conn:request's bad arguments are script errors naming
// the cause; a bad name is the metrics module's error.
func TestRequestArgs(t *testing.T) {
	addr := delayedEcho(t, 0)
	for _, c := range []struct{ call, want string }{
		{`c:request("x", 0)`, "the timeout must be more than 0 seconds"},
		{`c:request("x", -1)`, "the timeout must be more than 0 seconds"},
		{`c:request("x", true)`, "a timeout in seconds or an options table expected"},
		{`c:request("x", {name = "bad name"})`, `conn:request: metric name "bad name"`},
		{`c:request("x", 1, "rtt.max")`, `ends in .max`},
		{`metrics.count("lat"); c:request("x", 1, "lat")`, `"lat" is a counter, not a timing`},
	} {
		r := run(t, fmt.Sprintf("local c = assert(net.connect(%q, {frame = \"line\"}))\n%s", addr, c.call), 5*time.Second, nil)
		if r.err == nil || !strings.Contains(r.err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.call, r.err, c.want)
		}
	}
}

// TestUDPDialNotCounted: a UDP net.connect exchanges nothing with the
// peer: it is no connect attempt and has no connect time.
func TestUDPDialNotCounted(t *testing.T) {
	st := NewStats(nil)
	r := run(t, `local c = assert(net.connect("udp://127.0.0.1:9")); c:send("x")`, 5*time.Second, &Env{Stats: st})
	if r.err != nil {
		t.Fatal(r.err)
	}
	s := st.Set.Summary()
	if s.Counters["connect.attempts"] != 0 || s.Timings["connect"].Count != 0 || s.Counters["msgs.sent"] != 1 {
		t.Errorf("counters %v, connect count %d", s.Counters, s.Timings["connect"].Count)
	}
}
