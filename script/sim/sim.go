// Package sim runs a fleet of simulated devices from one Lua script: it
// starts them (spread over a ramp), gives client devices a target (the
// built-in sink when none is given), stops them at the deadline, and sums up
// what they did.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/metrics"
	"github.com/wirecat-dev/wirecat/pipe"
	"github.com/wirecat-dev/wirecat/proto"
	"github.com/wirecat-dev/wirecat/script"
)

// Config describes a run.
type Config struct {
	Program  *script.Program
	Count    int           // devices of the whole fleet; 0 means 1
	Shard    Shard         // the devices this process runs; the zero Shard runs them all
	Ramp     time.Duration // the fleet's starts are spread evenly over this
	Duration time.Duration // stop every device after this; 0 runs until done or ctx ends
	// StartAt, when set, is when the fleet starts (--start-at): Run waits
	// until then, and the ramp and the duration count from it, so shards
	// started apart keep one schedule. The zero time is now.
	StartAt time.Time
	Seed    uint64
	Args    map[string]string
	// Connect, when set, is where every net.connect goes, whatever address
	// the script gives; it is also the TARGET global. Without it, TARGET is
	// the address of a built-in sink that prints what it receives.
	Connect string
	// Listen, when set, is where every net.listen binds, whatever address
	// the script gives.
	Listen   string
	Frame    string // default framing of device connections and of the sink; "" takes the script's FRAME
	TLS      link.TLSOptions
	WS       link.WSOptions      // --ws-text, --header, --subprotocol, --origin, --ws-ping
	Dial     script.DialDefaults // -w and -s: net.connect's defaults
	MaxFrame int
	Load     proto.LoadFunc // lua:FILE framings; nil uses script.LoadFunc
	Sink     event.Sink     // every event of the devices' own connections
	// SinkEvents receives the built-in sink's events (what the devices sent
	// it); nil uses Sink.
	SinkEvents event.Sink
	Stdout     io.Writer // print()
	Stderr     io.Writer // log.*, device errors, progress
	Verbose    bool
	Progress   bool // a live progress line on Stderr (only when it is a terminal)
	NoSink     bool // do not start the built-in sink

	// Metrics is where the fleet's metrics go (script.NewStats names the
	// built-in ones); nil: a set of the run's own. The caller may snapshot
	// it at any time (a summary written on a signal).
	Metrics *metrics.Set
	// Report, when positive, is the interval of the fleet's reports: a
	// line on Stderr when ReportText (redrawn in place instead of the
	// progress line when Progress), and a JSON object per interval on
	// ReportJSON when it is not nil.
	Report     time.Duration
	ReportText bool
	ReportJSON io.Writer
}

// Summary is what a fleet did.
type Summary struct {
	Shard   Shard // the shard that ran, zero for a whole fleet
	Devices int   // devices started
	Failed  int   // devices that stopped with a script error
	Stopped int   // devices still running at the deadline or cancel
	// StoppedBy names what stopped them when it was not the deadline
	// ("SIGINT"); the caller knows, Run only sees its context end.
	StoppedBy string
	MsgsSent  int64
	BytesSent int64
	MsgsRecv  int64
	BytesRecv int64
	Conns     int64         // connections opened or accepted
	Errs      int64         // the errors counter: failures the devices saw
	StartUp   time.Duration // until the last device was started
	Connected time.Duration // until the latest connection was opened
	Elapsed   time.Duration
	Errors    []string // the first few device errors
	SinkAddr  string   // the built-in sink's address, if one ran
	// Metrics are the fleet's metrics at the end; Custom is how many of
	// their names the script made (Lua metrics, conn:request, the
	// protocol modules' timings) beyond the built-in ones.
	Metrics metrics.Summary
	Custom  int
}

const keepErrors = 10

// String is the closing summary shown on stderr.
func (s Summary) String() string {
	var b strings.Builder
	if !s.Shard.Whole() {
		fmt.Fprintf(&b, "shard %s: ", s.Shard)
	}
	fmt.Fprintf(&b, "%s started in %v", plural(int64(s.Devices), "device"), s.StartUp.Round(time.Millisecond))
	if s.Conns > 0 {
		fmt.Fprintf(&b, " (connected after %v)", s.Connected.Round(time.Millisecond))
	}
	by := "at the deadline"
	if s.StoppedBy != "" {
		by = "by " + s.StoppedBy
	}
	fmt.Fprintf(&b, ", %d failed, %d stopped %s, ran %v\n", s.Failed, s.Stopped, by, s.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "sent %s (%s), received %s (%s), %s, %s",
		plural(s.MsgsSent, "message"), plural(s.BytesSent, "byte"), plural(s.MsgsRecv, "message"), plural(s.BytesRecv, "byte"),
		plural(s.Conns, "connection"), plural(s.Errs, "error"))
	return b.String()
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Run runs the fleet until every device is done, the duration passes or ctx
// ends. Device errors are printed to Stderr as they happen and counted; the
// error return is for a run that could not start.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if cfg.Program == nil {
		return Summary{}, errors.New("no script")
	}
	if cfg.Count <= 0 {
		cfg.Count = 1
	}
	// Frame errors are usage errors: find them before any device starts.
	fromScript := cfg.Frame == "" && cfg.Program.Frame != ""
	if fromScript {
		cfg.Frame = cfg.Program.Frame
	}
	frame, err := proto.Parse(orRaw(cfg.Frame), loadOr(cfg.Load))
	if err != nil {
		if fromScript {
			err = fmt.Errorf("%s:%d: FRAME: %w", cfg.Program.Name, cfg.Program.FrameLine, err)
		}
		return Summary{}, err
	}
	var status *statusLine
	if cfg.Progress && cfg.Stderr != nil {
		// Every stderr line (log.*, device errors) first blanks the live
		// progress line, so none lands on its end.
		status = &statusLine{w: cfg.Stderr}
		cfg.Stderr = status
	}
	if cfg.Shard.K < 0 || cfg.Shard.K >= cfg.Shard.Step() {
		return Summary{}, fmt.Errorf("shard %s: K out of range", cfg.Shard)
	}
	// t0 is the fleet's start: device i is due at t0 + ramp*(i-1)/count,
	// whichever shard runs it.
	t0 := time.Now()
	if !cfg.StartAt.IsZero() {
		t0 = cfg.StartAt
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, t0.Add(cfg.Duration))
		defer cancel()
	}
	stats := script.NewStats(cfg.Metrics)
	env := &script.Env{
		Count: cfg.Count, Seed: cfg.Seed, Args: cfg.Args, Connect: cfg.Connect, Listen: cfg.Listen,
		Frame: cfg.Frame, TLS: cfg.TLS, WS: cfg.WS, Dial: cfg.Dial, Load: cfg.Load, MaxFrame: cfg.MaxFrame, Sink: cfg.Sink,
		Stdout: cfg.Stdout, Stderr: cfg.Stderr, Verbose: cfg.Verbose, Stats: stats, Target: cfg.Connect,
	}
	sum := Summary{Shard: cfg.Shard}
	if cfg.Connect == "" && !cfg.NoSink {
		sk, err := startSink(cfg, frame)
		if err != nil {
			return sum, err
		}
		defer sk.close()
		env.Target = sk.addr
		sum.SinkAddr = sk.addr
	}

	if !sleepUntil(ctx, t0) {
		return sum, nil // stopped while it waited: nothing ran
	}
	start := time.Now() // this process's start: t0, or later when it came late
	var wg sync.WaitGroup
	var mu sync.Mutex
	var running atomic.Int64 // devices started and not yet ended
	fail := func(err error) {
		stats.Errors.Add(1)
		mu.Lock()
		defer mu.Unlock()
		var de *script.DeviceError
		if errors.As(err, &de) {
			sum.Failed++
			stats.DevicesFailed.Add(1)
		}
		if len(sum.Errors) < keepErrors {
			sum.Errors = append(sum.Errors, err.Error())
		}
		if cfg.Stderr != nil {
			fmt.Fprintf(cfg.Stderr, "wirecat: %v\n", err)
		}
	}
	// A report line takes the progress line's place; JSON reports alone
	// leave it be.
	stopReport := func() {}
	if cfg.Report > 0 {
		stopReport = report(cfg, status, stats, &running, start)
	}
	stopProgress := func() {}
	if cfg.Report <= 0 || !cfg.ReportText {
		stopProgress = progress(cfg, status, stats, &sum, &mu, start)
	}
	started := 0
	for i := cfg.Shard.First(); i <= cfg.Count; i += cfg.Shard.Step() {
		if cfg.Ramp > 0 && i > 1 {
			sleepUntil(ctx, t0.Add(cfg.Ramp*time.Duration(i-1)/time.Duration(cfg.Count)))
		}
		if ctx.Err() != nil {
			break
		}
		started++
		stats.DevicesStarted.Add(1)
		wg.Add(1)
		running.Add(1)
		go func(id int) {
			defer wg.Done()
			defer running.Add(-1)
			err := cfg.Program.Run(ctx, id, env)
			switch {
			case errors.Is(err, script.ErrStopped):
				stats.DevicesStopped.Add(1)
				mu.Lock()
				sum.Stopped++
				mu.Unlock()
			case err != nil:
				fail(err)
			}
		}(i)
	}
	sum.StartUp = time.Since(start)
	wg.Wait()
	stopReport()
	stopProgress()
	sum.Devices = started
	sum.Elapsed = time.Since(start)
	sum.MsgsSent, sum.BytesSent = stats.MsgsSent.Load(), stats.BytesSent.Load()
	sum.MsgsRecv, sum.BytesRecv = stats.MsgsRecv.Load(), stats.BytesRecv.Load()
	sum.Conns, sum.Errs = stats.Conns.Load(), stats.Errors.Load()
	sum.Metrics, sum.Custom = stats.Set.Summary(), stats.Custom()
	if !cfg.StartAt.IsZero() {
		// The figures count from the fleet's start, not from the wait
		// for it, or the rates of merged shards would count the wait.
		sum.Metrics.Started = start.Round(0).UTC()
		sum.Metrics.Elapsed = time.Since(start).Seconds()
	}
	if last := stats.LastConn.Load(); last > 0 {
		sum.Connected = time.Unix(0, last).Sub(start)
	}
	return sum, nil
}

// sleepUntil waits until t or until ctx ends, and reports whether ctx is
// still alive.
func sleepUntil(ctx context.Context, t time.Time) bool {
	if wait := time.Until(t); wait > 0 {
		tm := time.NewTimer(wait)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
		}
	}
	return ctx.Err() == nil
}

func orRaw(s string) string {
	if s == "" {
		return "raw"
	}
	return s
}

func loadOr(l proto.LoadFunc) proto.LoadFunc {
	if l == nil {
		return script.LoadFunc
	}
	return l
}

// progress redraws one status line each second while the fleet runs.
func progress(cfg Config, status *statusLine, st *script.Stats, sum *Summary, mu *sync.Mutex, start time.Time) func() {
	if status == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				status.clear()
				return
			case <-tick.C:
				mu.Lock()
				failed := sum.Failed
				mu.Unlock()
				status.draw(fmt.Sprintf("%s  %d conns  sent %d  received %d  failed %d",
					time.Since(start).Round(time.Second), st.Conns.Load(), st.MsgsSent.Load(), st.MsgsRecv.Load(), failed))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// statusLine is stderr with a live status line at the bottom: a write
// blanks the line first; the next draw puts it back.
type statusLine struct {
	mu    sync.Mutex
	w     io.Writer
	drawn bool
}

func (s *statusLine) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drawn {
		io.WriteString(s.w, "\r\033[K")
		s.drawn = false
	}
	return s.w.Write(p)
}

func (s *statusLine) draw(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	io.WriteString(s.w, "\r\033[K"+line)
	s.drawn = true
}

func (s *statusLine) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drawn {
		io.WriteString(s.w, "\r\033[K")
		s.drawn = false
	}
}

// sink is the built-in server client devices talk to when no --connect was
// given: it accepts every device and reports what each sends.
type sink struct {
	ln       net.Listener
	addr     string
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	draining atomic.Bool   // close has begun: accept what the backlog holds, then stop
	accepted chan struct{} // closed when the accept loop has returned
}

// drainWait is how long the closing sink waits for one more connection in
// its backlog. Every device is done by then, so none is coming: this only
// has to cover the moment between setting the deadline and the accept.
const drainWait = 20 * time.Millisecond

func startSink(cfg Config, f proto.Framer) (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("built-in sink: %w", err)
	}
	s := &sink{ln: ln, addr: "tcp://" + ln.Addr().String(), conns: map[net.Conn]struct{}{}, accepted: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(s.accepted)
		for {
			if s.draining.Load() {
				ln.(*net.TCPListener).SetDeadline(time.Now().Add(drainWait))
			}
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c, f, cfg)
			}()
		}
	}()
	return s, nil
}

func (s *sink) serve(c net.Conn, f proto.Framer, cfg Config) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	id := pipe.NextID()
	out := cfg.SinkEvents
	if out == nil {
		out = cfg.Sink
	}
	if out == nil {
		out = event.Discard
	}
	base := event.Event{Conn: id, Transport: "tcp", Local: c.LocalAddr().String(), Remote: c.RemoteAddr().String(), Role: event.Server}
	emit := func(k event.Kind, from event.Side, data []byte, err error) {
		e := base
		e.Kind, e.Time, e.From, e.Data, e.Err = k, time.Now(), from, data, err
		out.Emit(&e)
	}
	emit(event.Open, 0, nil, nil)
	max := cfg.MaxFrame
	if max <= 0 {
		max = 1 << 20
	}
	var buf []byte
	chunk := make([]byte, 16<<10)
	for {
		n, rerr := c.Read(chunk)
		buf = append(buf, chunk[:n]...)
		rest := buf
		for len(rest) > 0 {
			m, used, err := f.Decode(rest)
			if err != nil {
				emit(event.Error, 0, nil, err)
				return
			}
			if used == 0 {
				if len(rest) > max {
					emit(event.Error, 0, nil, fmt.Errorf("message larger than the maximum of %d bytes", max))
					return
				}
				break
			}
			if m != nil { // nil: filler skipped
				emit(event.Data, event.Client, m, nil)
			}
			rest = rest[used:]
		}
		if rerr != nil {
			if fin, ok := f.(proto.Finisher); ok && len(rest) > 0 {
				if m, err := fin.Finish(rest); err == nil && m != nil {
					emit(event.Data, event.Client, m, nil)
				}
			}
			emit(event.Close, event.Client, nil, nil)
			return
		}
		// Keep the partial message at the front: the buffer is reused, not
		// reallocated on every read.
		buf = append(buf[:0], rest...)
	}
}

// close stops accepting, gives the devices' last bytes (their connections
// are closed by now) a moment to be read, then closes what is left. A
// device that connected, sent and closed before the accept loop took it is
// still in the listener's backlog, and closing the listener would drop it
// unread: the loop first accepts until the backlog is empty.
func (s *sink) close() {
	s.draining.Store(true)
	s.ln.(*net.TCPListener).SetDeadline(time.Now().Add(drainWait)) // wakes an idle Accept
	<-s.accepted
	s.ln.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(500 * time.Millisecond):
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-done
}
