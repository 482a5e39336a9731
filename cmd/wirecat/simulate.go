package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
	"github.com/wirecat-dev/wirecat/script"
	"github.com/wirecat-dev/wirecat/script/sim"
	"github.com/wirecat-dev/wirecat/units"
)

// lua:FILE framings work in every data command.
func init() { loadFramer = script.LoadFunc }

// SimulateCmd is `wirecat simulate`.
type SimulateCmd struct {
	Script   string         `arg:"" placeholder:"SCRIPT.lua" predictor:"lua" help:"The device script."`
	Count    int            `short:"n" default:"1" help:"How many devices to run at once (the whole fleet, with --shard)."`
	Shard    string         `placeholder:"K/N" help:"Run shard K (from 0) of N: device ids K+1, K+1+N, ...; auto/N takes K from $JOB_COMPLETION_INDEX, $NOMAD_ALLOC_INDEX or $WIRECAT_SHARD."`
	StartAt  string         `placeholder:"TIME" help:"Start the fleet at TIME (RFC 3339, or HH:MM[:SS] today in UTC); --ramp and --duration count from it."`
	Ramp     units.Duration `placeholder:"DUR" help:"Spread the devices' starts over this long (the whole fleet's, with --shard)."`
	Duration units.Duration `placeholder:"DUR" help:"Stop every device after this long (default: run until they are done)."`
	Seed     uint64         `default:"1" help:"Seed of each device's math.random (with its device id)."`
	Arg      []string       `placeholder:"K=V" help:"Set args.K to V in the script; repeatable."`
	Connect  string         `placeholder:"ADDR" predictor:"addr" help:"Every net.connect goes here, whatever the script says; also the TARGET global."`
	Listen   string         `placeholder:"ADDR" predictor:"addr" help:"Every net.listen binds here, whatever the script says."`
	Timeout  units.Duration `short:"w" placeholder:"DUR" help:"net.connect gives up after DUR unless the script says (default 10s)."`
	Source   string         `short:"s" placeholder:"ADDR[,ADDR...]" help:"net.connect connects from this local address unless the script says; a list or a range (127.0.0.2-127.0.0.9) spreads the devices by id."`
	HealFlags
	DataFlags
	TLSFlags
	MetricsFlags
}

func (c *SimulateCmd) Help() string {
	return `Runs a device written in Lua (see docs/lua.md); --count runs a fleet. Client
devices connect to TARGET: the --connect address, or else a sink that wirecat
itself listens on, whose received messages are printed to stdout, one a line
when the script declares its framing (FRAME = "delim:,") or --frame is given.
stdout carries that and what the script print()s, nothing else: what the
devices receive is theirs to print (-o text or json also show the devices' own
connections, both directions; --record keeps everything). A summary goes to
stderr at the end.

Each device's connection takes a descriptor, two when it connects to the
built-in sink: a fleet larger than the descriptor limit (ulimit -n) allows is
told so before it starts. A device costs about 25-30 KiB of memory at 10,000
(docs/lua.md, Performance).

Examples:

    wirecat simulate scripts/thermo.lua
    wirecat simulate scripts/thermo.lua --count 1000 --ramp 5s \
        --connect 127.0.0.1:5000
    wirecat simulate scripts/analog.lua --arg encoding=binary -o hex
    wirecat simulate scripts/particle-web.lua --listen 127.0.0.1:8080
    wirecat simulate scripts/thermo.lua -n 1000 --duration 1m --report 5s \
        --summary run.json --threshold 'connect.p99 < 50ms' \
        --threshold 'errors == 0'

--report, --summary and --threshold are the fleet's metrics (docs/fleet.md);
a threshold not met exits 3.

A fleet too big for one machine runs as shards (docs/fleet.md): each
process runs every Nth device id, and --start-at starts them together:

    wirecat simulate scripts/thermo.lua --count 20000 --shard 0/2 \
        --start-at 2026-11-29T21:30:00Z --ramp 20s --connect 10.0.0.5:5000`
}

func (c *SimulateCmd) Run(app *App, g *Globals) error {
	prog, err := script.Load(c.Script)
	if err != nil {
		return usage(err) // a missing file or a syntax error
	}
	if c.Count < 1 {
		return usage(errors.New("--count must be at least 1"))
	}
	if c.Timeout < 0 {
		return usage(errors.New("--timeout must be positive"))
	}
	var sources []string
	if c.Source != "" {
		if sources, err = sim.ParseSources(c.Source); err != nil {
			return usage(fmt.Errorf("--source: %w", err))
		}
	}
	var shard sim.Shard
	if c.Shard != "" {
		if shard, err = sim.ParseShard(c.Shard, c.Count, app.Getenv); err != nil {
			return usage(err)
		}
	}
	var startAt time.Time
	if c.StartAt != "" {
		if startAt, err = sim.ParseStartAt(c.StartAt, time.Now()); err != nil {
			return usage(err)
		}
		if c.Duration > 0 && time.Until(startAt.Add(c.Duration.D())) <= 0 {
			return usage(fmt.Errorf("--start-at %s with --duration %v ended %v ago: nothing is left to run",
				c.StartAt, c.Duration.D(), -time.Until(startAt.Add(c.Duration.D())).Round(time.Second)))
		}
	}
	retry, err := c.retries()
	if err != nil {
		return err
	}
	proxy, err := c.proxies(app)
	if err != nil {
		return err
	}
	args := map[string]string{}
	for _, kv := range c.Arg {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usage(fmt.Errorf("--arg %q: want KEY=VALUE", kv))
		}
		args[k] = v
	}
	for _, a := range []string{c.Connect, c.Listen} {
		if a != "" {
			if _, err := parseAddr(a, false); err != nil {
				return err
			}
		}
	}
	fm, err := c.MetricsFlags.prepare(app) // a bad --threshold stops us before any connection
	if err != nil {
		return err
	}
	defer fm.close()
	if !shard.Whole() {
		fm.Shard = shard.String() // the summary file says which part of the fleet it holds
	}
	// The script's FRAME stands in for --frame: its connections, the
	// sink, and -o lines by default.
	df := c.DataFlags
	fromScript := df.Frame == "" && prog.Frame != ""
	if fromScript {
		df.Frame = prog.Frame
	}
	// The fleet draws its own status line on a terminal (sim.Config.Progress):
	// the byte meter of the other commands would fight it for the line.
	noMeter := *app
	noMeter.StderrTerminal = false
	// -o text|json show the devices' connections both ways, as the help says.
	p, err := plumb(&noMeter, g, &df, true)
	if err != nil {
		if fromScript && errors.Is(err, proto.ErrBadSpec) {
			return usage(fmt.Errorf("%s:%d: FRAME: %w", prog.Name, prog.FrameLine, err))
		}
		return err
	}
	defer p.Close()
	if w := sim.DescriptorWarning(shard.Size(c.Count), c.Connect == ""); w != "" {
		p.log.Warnf("%s", w)
	}
	if !startAt.IsZero() {
		if wait := time.Until(startAt); wait > 0 {
			p.log.Notef("waiting until %s (in %v) to start", startAt.UTC().Format(time.RFC3339), wait.Round(time.Second))
		} else {
			p.log.Notef("--start-at %s passed %v ago: starting now; the devices already due start at once", c.StartAt, -wait.Round(time.Millisecond))
		}
	}
	stopFlush := every(100*time.Millisecond, func() { p.out.Flush() }) // what the sink prints keeps flowing
	cfg := sim.Config{
		Program: prog, Count: c.Count, Shard: shard, StartAt: startAt, Ramp: c.Ramp.D(), Duration: c.Duration.D(), Seed: c.Seed, Args: args,
		Connect: c.Connect, Listen: c.Listen, Frame: df.Frame, TLS: c.TLSFlags.options(), WS: c.TLSFlags.WSFlags.options(), MaxFrame: int(c.MaxFrame),
		Dial: script.DialDefaults{Timeout: c.Timeout.D(), Sources: sources, Retry: retry, Proxy: proxy},
		Load: loadFramer, Sink: deviceSink(p, df.outputMode()), SinkEvents: p.cfg.Sink,
		Stdout: printWriter{p, app.Stdout}, Stderr: app.Stderr, Verbose: g.Verbose,
		Progress: app.StderrTerminal && !g.Quiet,
	}
	fm.configure(&cfg, df.outputMode() == "json", printWriter{p, app.Stdout})
	sum, err := sim.Run(app.Ctx, cfg)
	stopFlush()
	p.flush() // what the sink printed comes before the summary
	if err != nil {
		return err
	}
	if sum.SinkAddr != "" {
		p.log.Debugf("built-in sink listened on %s", sum.SinkAddr)
	}
	if sig, ok := signalled(app.Ctx); ok {
		sum.StoppedBy = sig.name() // the devices still running, not --duration
	}
	for _, line := range strings.Split(sum.String(), "\n") {
		p.log.Notef("%s", line)
	}
	if err := fm.finish(sum, func(line string) { p.log.Notef("%s", line) }, p.log.W); err != nil {
		return err
	}
	if sum.Failed > 0 {
		return silent{exitFailure}
	}
	return nil
}

// deviceSink is where the devices' own connections report. Their messages
// are recorded and counted, but on stdout only the tagged views (text, json)
// show them: in raw, lines and hex, stdout is what the script prints and
// what the built-in sink receives, nothing else. A device's script prints
// what it wants of its own traffic.
func deviceSink(p *plumbing, mode string) event.Sink {
	sinks := []event.Sink{meterSink{p.meter}}
	if p.rec != nil {
		sinks = append(sinks, p.rec)
	}
	if mode == "text" || mode == "json" {
		sinks = append(sinks, p.out)
	}
	return event.Tee(sinks...)
}

// printWriter is where print() writes: what the output holds goes first, so
// printed lines and shown messages keep the order they happened in.
type printWriter struct {
	p *plumbing
	w io.Writer
}

func (pw printWriter) Write(b []byte) (int, error) {
	pw.p.out.Flush()
	return pw.w.Write(b)
}
