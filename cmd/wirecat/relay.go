package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/wirecat-dev/wirecat/access"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/relay"
	"github.com/wirecat-dev/wirecat/units"
)

// RelayCmd is `wirecat relay`.
type RelayCmd struct {
	Listen   string         `arg:"" placeholder:"LISTEN" predictor:"addr" help:"Where clients connect: [scheme://][host]:port (tcp, udp, tls, dtls, unix, unixgram), or pty:/path (each opener of the tty is a client)."`
	Target   string         `arg:"" placeholder:"TARGET" predictor:"addr" help:"Where each client's own connection goes: [scheme://]host:port."`
	UDP      bool           `short:"u" help:"Read scheme-less addresses as UDP."`
	Script   string         `placeholder:"HOOKS.lua" predictor:"lua" help:"Lua hooks: on_open(conn), on_message(conn, dir, msg), on_close(conn) (see docs/relay.md)."`
	Idle     units.Duration `placeholder:"DUR" help:"End a pair silent for this long. Default: 60s for datagram sessions, never for streams."`
	MaxConns int            `placeholder:"N" help:"Refuse clients beyond N pairs at once (datagram senders count)."`
	Allow    []string       `placeholder:"CIDR" help:"Accept only clients in these networks."`
	Deny     []string       `placeholder:"CIDR" help:"Refuse clients in these networks."`

	FaultFlags
	Down         []string `group:"Faults" placeholder:"DUR@START" help:"An outage of DUR from START after the relay starts: new clients are refused (reset at once), open pairs reset (repeatable)."`
	Hold         []string `group:"Faults" placeholder:"DUR@START" help:"A stall of DUR from START: new clients wait and open pairs forward nothing; the bytes wait, none is lost (repeatable)."`
	At           []string `group:"Faults" sep:"none" placeholder:"'TIME FLAGS'" help:"From TIME after the start, these faults on top of the command line's: --at '30s --delay 200ms --drop 5%' (repeatable)."`
	Control      string   `group:"Faults" placeholder:"ADDR" help:"Serve the control API here (JSON over HTTP): list connections, change faults while running; wirecat fault is its client."`
	ControlToken string   `group:"Faults" placeholder:"TOKEN" env:"WIRECAT_CONTROL_TOKEN" help:"The token control requests must carry (required when --control is not on loopback)."`

	DialFlags
	DataFlags
	TLSFlags
	SerialFlags
}

func (c *RelayCmd) Help() string {
	return `Each client accepted on LISTEN gets its own connection to TARGET, any
transport to any transport. When one side closes, the other is half-closed,
then closed. A datagram sender is a session that ends after --idle.

Without -o, --record, --frame, --script or a fault, a stream-to-stream pair
is spliced between the bare sockets (on Linux; elsewhere copied with a
pooled buffer) through a pipe that an idle pair does not hold: an idle pair
costs its two sockets and nothing more. At the
descriptor limit new clients are closed at once (said once in a while on
stderr) and served again as soon as descriptors free.
Nothing is printed without -o; -o shows both directions, tagged
client→server or server→client. The view never holds up the traffic: when
stdout does not keep up (a paused pager), view lines are dropped and their
count said on stderr; the relayed bytes and --record miss nothing. A
message whose view is over 1 MiB is shown only when stdout has written all
before it, else dropped and counted apart. --frame
makes it, the hooks and the faults message by message (a datagram is always
one message). Whatever --frame, the bytes forwarded are exactly the bytes
received (a CRLF stays a CRLF under --frame line); only a message a hook
changed is encoded again, and bytes that make no frame (malformed, over
--max-frame) are passed on as they came. TLS: --cert/--key/--client-ca
are for a tls LISTEN side; --insecure/--ca/--pin/--sni for a tls TARGET
(and --cert/--key too when LISTEN is not tls). --psk/--psk-identity go to
whichever side is dtls.

Examples:

    # TLS in front of a plain broker, and a plain board to a TLS broker:
    wirecat relay tls://:8883 127.0.0.1:1883
    wirecat relay :1883 tls://broker:8883 --ca ca.pem
    # A plain-UDP CoAP board reaches a DTLS gateway with a pre-shared key:
    wirecat relay -u :5683 dtls://127.0.0.1:5684 --psk c0ffee --psk-identity s1
    # a UDP board to a TCP server; watch both directions:
    wirecat relay -u :5005 tcp://127.0.0.1:7000 --frame line
    wirecat relay :7000 127.0.0.1:7001 --frame line -o text
    # watch in a pager; pausing it drops view lines, never traffic:
    wirecat relay :7000 127.0.0.1:7001 --frame line -o text | less
    # watched and recorded by line; the bytes, CRLFs too, pass as they came:
    wirecat relay :7000 127.0.0.1:7001 --frame line -o text --record board.jsonl
    # a bad network, and a Lua hook rewriting messages:
    wirecat relay :7000 127.0.0.1:7001 --delay up:200ms --drop 0.1
    # framing bugs, flaky links, an outage from 30 s to 35 s, worse at 60 s:
    wirecat relay :7000 127.0.0.1:7001 --slice down:1-8 --corrupt up:1%
    wirecat relay :7000 127.0.0.1:7001 --reset 64KiB --down 5s@30s \
        --at '60s --delay 300ms --drop 5%'
    # change faults while it runs:
    wirecat relay :7000 127.0.0.1:7001 --control 127.0.0.1:7070
    wirecat fault 127.0.0.1:7070 --delay up:200ms
    wirecat relay :7000 127.0.0.1:7001 --frame line \
        --script scripts/hooks-upper.lua
    # a serial port on TCP (ser2net), and a remote board as a local tty:
    wirecat relay 127.0.0.1:2323 serial:/dev/ttyUSB0
    wirecat relay pty:/tmp/ttyV0 tcp://127.0.0.1:2323
    # a WebSocket front on a TCP broker (as websockify), and a TCP-only
    # board's way out to an MQTT-over-wss broker:
    wirecat relay ws://:8080/mqtt tcp://127.0.0.1:1883 --subprotocol mqtt
    wirecat relay tcp://:1884 wss://broker.example/mqtt --ca ca.pem \
        --subprotocol mqtt`
}

func (c *RelayCmd) Run(app *App, g *Globals) error {
	listen, err := parseAddr(c.Listen, c.UDP)
	if err != nil {
		return err
	}
	target, err := parseAddr(c.Target, c.UDP)
	if err != nil {
		return err
	}
	acl, err := access.Parse(c.Allow, c.Deny)
	if err != nil {
		return usage(err)
	}
	if c.MaxConns < 0 {
		return usage(fmt.Errorf("--max-conns must be 0 (no limit) or more"))
	}
	specs := c.specs()
	faults, err := relay.ParseFaults(specs)
	if err != nil {
		return usage(err)
	}
	var plan relay.Plan
	if plan.Outages, err = relay.ParseOutages(c.Down, c.Hold); err != nil {
		return usage(err)
	}
	if plan.Steps, err = relay.ParseAt(c.At, specs); err != nil {
		return usage(err)
	}
	var control link.Addr
	if c.Control != "" {
		if control, err = parseAddr(c.Control, false); err != nil {
			return err
		}
		if control.Transport() != "tcp" {
			return usage(fmt.Errorf("--control %s: the control API is served over tcp", c.Control))
		}
		if !relay.Loopback(control.Host) && c.ControlToken == "" {
			return hinted{usage(fmt.Errorf("--control %s is not a loopback address: it needs a token", c.Control)),
				"give one with --control-token TOKEN (or WIRECAT_CONTROL_TOKEN), and to wirecat fault with --token"}
		}
	}
	// A relay shows nothing unless -o asks: both directions mixed as raw
	// bytes on stdout would help nobody by default.
	outApp := app
	if c.Output == "" {
		quiet := *app
		quiet.Stdout = io.Discard
		outApp = &quiet
	}
	p, err := plumbView(outApp, g, &c.DataFlags)
	if err != nil {
		return err
	}
	defer p.Close()
	if c.Output != "" {
		defer reportDrops(p, c.Output)()
	}
	var sink event.Sink = p.cfg.Sink
	switch {
	case c.Output == "" && c.Record == "":
		sink = nil
	case c.Output == "":
		sink = event.Tee(p.rec, meterSink{p.meter}) // nothing to render for a view nobody asked for
	}
	var hooks *relay.Hooks
	if c.Script != "" {
		if hooks, err = relay.LoadHooks(c.Script, p.log); err != nil {
			if errors.Is(err, relay.ErrBadScript) {
				return usage(err)
			}
			return err
		}
		defer hooks.Close()
	}
	lopts, dopts := c.sideOptions(listen, target, p.log.Notef, p.log.Debugf)
	if err := c.SerialFlags.apply(lopts); err != nil {
		return err
	}
	c.SerialFlags.apply(dopts)
	if err := c.DialFlags.apply(app, dopts, target); err != nil {
		return err
	}
	r := relay.New(relay.Config{
		Target: target, Dial: dopts, Framer: p.cfg.Framer, MaxFrame: p.cfg.MaxFrame,
		Sink: sink, Flush: p.cfg.Flush, Hooks: hooks, Faults: faults,
		MaxConns: c.MaxConns, Access: acl, Idle: c.Idle.D(), Log: p.log,
		Dynamic: c.Control != "" || !plan.Empty(),
	})
	if c.Control != "" {
		cln, err := link.Listen(app.Ctx, control, nil)
		if err != nil {
			return netError(fmt.Errorf("--control: %w", err))
		}
		p.log.Debugf("control API on http://%s", cln.Addr())
		ctx, cancel := context.WithCancel(app.Ctx)
		done := make(chan struct{})
		go func() { r.ServeControl(ctx, cln, c.ControlToken); close(done) }()
		defer func() { cancel(); <-done }()
	}
	startPlan := func() {
		if !plan.Empty() {
			go r.RunPlan(app.Ctx, plan)
		}
	}
	if listen.Packet() {
		pc, err := link.ListenPacket(app.Ctx, listen, lopts)
		if err != nil {
			return netError(err)
		}
		relaying(p, listen, pc.LocalAddr(), target)
		startPlan()
		return r.ServePacket(app.Ctx, pc, listen.Transport())
	}
	ln, err := link.Listen(app.Ctx, listen, lopts)
	if err != nil {
		return netError(err)
	}
	relaying(p, listen, ln.Addr(), target)
	startPlan()
	return r.Serve(app.Ctx, ln, listen.Transport())
}

// sideOptions splits the TLS flags between the listening side (server
// certificate, client CAs) and the target (verification, client certificate).
func (c *RelayCmd) sideOptions(listen, target link.Addr, logf, debugf func(string, ...any)) (lopts, dopts *link.Options) {
	t := c.TLSFlags.options()
	ws := c.TLSFlags.WSFlags.options()
	ws.MaxMessage = int(c.MaxFrame)
	lopts = &link.Options{Log: logf, Debug: debugf, WS: ws, TLS: link.TLSOptions{Cert: t.Cert, Key: t.Key, ClientCA: t.ClientCA, ALPN: t.ALPN}}
	d := link.TLSOptions{Insecure: t.Insecure, CA: t.CA, SNI: t.SNI, Pin: t.Pin, ALPN: t.ALPN}
	if listen.Scheme != "tls" && listen.Scheme != "dtls" && listen.Scheme != "wss" {
		d.Cert, d.Key = t.Cert, t.Key
	}
	dopts = &link.Options{Log: logf, Debug: debugf, WS: ws, TLS: d}
	// A pre-shared key belongs to whichever side speaks DTLS (both may);
	// with neither, the listening side refuses it.
	if listen.Scheme == "dtls" || target.Scheme != "dtls" {
		lopts.TLS.PSK, lopts.TLS.PSKFile, lopts.TLS.PSKIdentity = t.PSK, t.PSKFile, t.PSKIdentity
	}
	if target.Scheme == "dtls" {
		dopts.TLS.PSK, dopts.TLS.PSKFile, dopts.TLS.PSKIdentity = t.PSK, t.PSKFile, t.PSKIdentity
	}
	return lopts, dopts
}

// relaying says where the relay listens: always when the system chose the
// port (port 0), so clients can be told where to go; otherwise with -v.
func relaying(p *plumbing, listen link.Addr, local net.Addr, target link.Addr) {
	path := ""
	if listen.IsWebSocket() {
		path = listen.Path
	}
	if listen.Port == "0" {
		p.log.Notef("relaying %s://%s%s to %s", listen.Scheme, local, path, target)
		return
	}
	p.log.Debugf("relaying %s://%s%s to %s", listen.Scheme, local, path, target)
}

// dropReportEvery is how often a relay says that its view drops lines, at
// most (the first drop is reported within a second).
const dropReportEvery = 10 * time.Second

// reportDrops says on stderr when the -o view drops lines: because stdout
// does not keep up (a paused pager), or because a message's view is larger
// than the view's queue and stdout was still writing what came before. At
// the first drop, then at most every dropReportEvery, and the total at the
// end (call the returned func).
func reportDrops(p *plumbing, mode string) (done func()) {
	var said int64
	var last time.Time
	unit := "view line"
	if mode == "raw" {
		unit = "chunk"
	}
	check := func(final bool) {
		slow, large := p.out.DroppedBy()
		events := slow.Events + large.Events
		if events == 0 || !final && (events == said || time.Since(last) < dropReportEvery) {
			return
		}
		said, last = events, time.Now()
		var why []string
		if slow.Events > 0 {
			why = append(why, dropCount(slow.Lines, unit)+" because stdout did not keep up")
		}
		if large.Events > 0 {
			why = append(why, fmt.Sprintf("%s of %s too large for the view (over %s shown: one is shown only when stdout has written all before it)",
				dropCount(large.Lines, unit), dropCount(large.Events, "message"), units.FormatSize(int64(p.out.LargeView()))))
		}
		what := strings.Join(why, "; ")
		if final {
			p.log.Notef("-o %s: dropped in all: %s (the relayed traffic and --record are complete)", mode, what)
			return
		}
		if large.Events == 0 { // the usual case, said shortly
			p.log.Notef("-o %s: stdout is not keeping up: %s dropped so far (the relayed traffic and --record are complete)", mode, dropCount(slow.Lines, unit))
			return
		}
		p.log.Notef("-o %s: dropped so far: %s (the relayed traffic and --record are complete)", mode, what)
	}
	stop := every(time.Second, func() { check(false) })
	return func() {
		stop()
		check(true)
	}
}

func dropCount(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
