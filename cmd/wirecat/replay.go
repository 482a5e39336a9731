package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/replay"
	"github.com/wirecat-dev/wirecat/units"
)

// ReplayCmd is `wirecat replay`.
type ReplayCmd struct {
	File    string         `arg:"" placeholder:"FILE" predictor:"session" help:"The session file to replay (--record wrote it)."`
	As      string         `placeholder:"SIDE" predictor:"side" help:"The side to play: client or server (default: the side wirecat played when recording)."`
	To      string         `placeholder:"ADDR" predictor:"addr" help:"As client: connect here instead of the recorded server address."`
	Listen  string         `placeholder:"ADDR" predictor:"addr" help:"As server: listen here instead of the recorded server address."`
	Speed   string         `default:"1" placeholder:"N|max" help:"Timing: 1 keeps the recorded pauses, 2 halves them, max sends at once."`
	Check   bool           `help:"Compare what the peer sends with the recording; exit 3 with a diff at the first difference."`
	Timeout units.Duration `default:"5s" placeholder:"DUR" help:"How long to wait for each message the peer should send."`
	Conn    uint64         `placeholder:"N" help:"Replay only recorded connection N."`
	Once    bool           `help:"As server: stop after one connection (default: serve until Ctrl-C)."`
	// -w and -s as on every command that connects; --timeout is taken.
	ConnectTimeout units.Duration `short:"w" placeholder:"DUR" help:"As client: give up connecting after DUR (-w/--timeout elsewhere)."`
	Source         string         `short:"s" placeholder:"ADDR[:PORT]" help:"As client: connect from this local address."`
	HealFlags
	DataFlags
	TLSFlags
	SerialFlags
}

func (c *ReplayCmd) Help() string {
	return `Plays one side of a recorded session against a live peer. As a client it
connects and sends what the recorded client sent, keeping the recorded
timing, waiting for each answer; as a server it accepts connections and
answers each as the recorded server did: a recorded device becomes a mock.
Connections replay concurrently at their recorded offsets. Messages go out
as the exact bytes recorded on the wire (a relay recording keeps them);
--frame with another framing re-encodes the payloads instead.

The recording is read as it plays, in bounded memory: a 1 GB file starts
at once, and at the recorded speed it is read at most a second ahead of
its times (GOMEMLIMIT, when set, replaces the 60 MiB soft memory limit). Connections past the descriptor limit (ulimit -n) wait for one to
close, later than recorded, with a note; raise the limit to keep the times.

With --check, every message the peer sends is compared with the recording;
the first difference is shown as a diff on stderr and wirecat exits 3.
A WebSocket closes as recorded: the side that sent the close frame sends
the recorded code and reason; with --check, a peer closing with another
code than the recorded one is a difference.

Examples:

    wirecat connect 127.0.0.1:5000 --frame line --record led.jsonl
    wirecat replay led.jsonl --check                  # same answers?
    wirecat replay led.jsonl --to 10.0.0.7:5000 --speed max
    wirecat replay led.jsonl --as server --listen :5000   # a mock board
    wirecat replay http.jsonl --as server --listen 127.0.0.1:8080 --once
    wirecat replay fleet.jsonl --as client --conn 3 --check --timeout 2s
    wirecat replay ws.jsonl --to ws://127.0.0.1:8080/mqtt --check`
}

func (c *ReplayCmd) Run(app *App, g *Globals) error {
	limitStreamMemory()
	if c.As != "" && c.As != "client" && c.As != "server" { // not a kong enum: its error would list ""
		return usage(fmt.Errorf("--as %q: want client or server", c.As))
	}
	r, err := openSession(c.File) // refuses what is no session, with a hint
	if err != nil {
		return err
	}
	r.Close()
	s, err := replay.OpenStream(c.File) // played as it is read: constant memory
	if err != nil {
		return err
	}
	side := event.Client
	switch c.As {
	case "server":
		side = event.Server
	case "":
		if side, err = s.DefaultSide(); err != nil {
			return usage(err)
		}
	}
	switch {
	case side == event.Client && c.Listen != "":
		return usage(errors.New("--listen is for --as server; a client connects with --to"))
	case side == event.Server && c.To != "":
		return usage(errors.New("--to is for --as client; a server listens with --listen"))
	}
	first, err := s.Select(side, c.Conn)
	if errors.Is(err, replay.ErrNoConn) {
		return usage(err)
	}
	if err != nil {
		return err
	}
	speed, err := parseSpeed(c.Speed)
	if err != nil {
		return err
	}
	exact := c.Frame == "" || c.Frame == s.Header.Frame
	if c.Frame == "" {
		c.Frame = s.Header.Frame // messages go out framed as they were recorded
	}
	p, err := plumb(app, g, &c.DataFlags, false)
	if err != nil {
		return err
	}
	defer p.Close()
	lopts := p.linkOptions(&c.TLSFlags, false)
	if err := c.SerialFlags.apply(lopts); err != nil {
		return err
	}
	cfg := &replay.Config{
		As: side, Link: lopts, Framer: p.cfg.Framer,
		MaxFrame: p.cfg.MaxFrame, Speed: speed, Check: c.Check, Timeout: c.Timeout.D(),
		Once: c.Once, Exact: exact, Sink: p.cfg.Sink, Flush: p.flush, Log: p.log,
		Listening: func(a net.Addr) { p.log.Debugf("replaying as server on %s", a) },
	}
	if a := c.To + c.Listen; a != "" {
		udp := first.Transport == "udp"
		addr, err := parseAddr(a, udp)
		if err != nil {
			return err
		}
		cfg.Addr = &addr
	}
	if c.ConnectTimeout != 0 || c.Source != "" || c.Retry != "" || c.Proxy != "" || side == event.Client && c.To != "" {
		if side != event.Client {
			return usage(errors.New("-w, -s, --retry and --proxy are for --as client: a server does not connect"))
		}
		dial := DialFlags{Timeout: c.ConnectTimeout, Source: c.Source, HealFlags: c.HealFlags}
		var to link.Addr // unknown until each connection: checked there
		if cfg.Addr != nil {
			to = *cfg.Addr
		}
		if err := dial.apply(app, cfg.Link, to); err != nil {
			return err
		}
	}
	p.log.Debugf("replaying %s as %s", c.File, side)
	err = replay.RunStream(app.Ctx, s, cfg)
	var d *replay.Difference
	if errors.As(err, &d) {
		p.Close()
		fmt.Fprint(app.Stderr, "wirecat: replay: "+d.Report())
		return silent{exitUnmet}
	}
	if errors.Is(err, replay.ErrNoConn) {
		return usage(err)
	}
	return netError(err)
}

// parseSpeed reads --speed: a positive factor, or max (0: no waiting).
func parseSpeed(s string) (float64, error) {
	if strings.EqualFold(s, "max") {
		return 0, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "x"), 64)
	if err != nil || f <= 0 || f > 1e6 {
		return 0, usage(fmt.Errorf("--speed %q: want a positive factor (1, 2, 10, 0.5) or max", s))
	}
	return f, nil
}
