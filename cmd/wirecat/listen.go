package main

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/wirecat-dev/wirecat/access"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/pipe"
	"github.com/wirecat-dev/wirecat/proto"
	"github.com/wirecat-dev/wirecat/units"
)

// ListenCmd is `wirecat listen`.
type ListenCmd struct {
	Addr     string   `arg:"" placeholder:"ADDR|PORT" predictor:"addr" help:"Where to listen: [scheme://][host]:port, e.g. :5000, udp://:5005, tls://127.0.0.1:8443, dtls://:5684, unix:///tmp/x.sock; a bare PORT (5000) is every interface, as with nc -l 5000; or HOST with PORT after it; serial:/dev/ttyUSB0 (the port is the peer) or pty:[/path] (whoever opens the new tty is)."`
	Port     string   `arg:"" optional:"" placeholder:"PORT" help:"The port, when the first argument is a bare HOST (nc -l 127.0.0.1 5000)."`
	KeepOpen bool     `short:"k" help:"Accept many peers, concurrently; stdin goes to all of them."`
	MaxConns int      `placeholder:"N" help:"With -k, refuse peers beyond N at once (UDP: senders heard from within --idle, 60s by default with --max-conns)."`
	Allow    []string `placeholder:"CIDR" help:"Accept only peers in these networks."`
	Deny     []string `placeholder:"CIDR" help:"Refuse peers in these networks."`
	Broker   bool     `help:"With -k, pass every peer's messages to every other peer (ncat --broker); stdin still goes to all."`
	Chat     bool     `help:"--broker for people: each message tagged with its sender (<user3> hi), joins and leaves announced; --frame line unless --frame says otherwise."`
	ExpectFlags
	ConnFlags
	DataFlags
	InputFlags
	TLSFlags
	SerialFlags
}

// ExpectFlags make listen the server side of `send`: wait for a peer, send,
// expect an answer, exit 0 or 3.
type ExpectFlags struct {
	Send    []string       `group:"Expect" placeholder:"MSG" help:"Once a peer connects, send MSG (repeatable; \\n \\r \\t \\0 \\\\ \\xHH escapes), then read its replies as --until, --replies and --wait say, and exit."`
	Until   string         `group:"Expect" placeholder:"TEXT" help:"Exit 0 as soon as TEXT was received from the peer; exit 3 if it was not."`
	Replies int            `group:"Expect" placeholder:"N" help:"Exit 0 as soon as N messages arrived from the peer; exit 3 if they did not."`
	Wait    units.Duration `group:"Expect" default:"1s" placeholder:"DUR" help:"With --send, --until or --replies: give up after this long with nothing arriving (default 1s)."`
}

func (x *ExpectFlags) active() bool { return len(x.Send) > 0 || x.Until != "" || x.Replies > 0 }

func (c *ListenCmd) Help() string {
	return `Accepts one peer (with -k, many) and wires it to stdin/stdout or --exec.
Without -k, wirecat exits when its one peer is done. A UDP listener tags
each datagram with its sender and answers the most recent one (with -k,
every known peer); with --exec, each sender gets its own process, whose
stdout answers that sender. On port 0 the port the system chose is printed on
stderr. -o text, hex and json show both directions, tagged.

A ws:// or wss:// listener serves WebSocket upgrades on its URL's path
(other paths get 404) and each WebSocket message is one message, shown on
a line of its own with -o raw's default (plain -o raw keeps the bytes
exact). With --exec, the command's output is a stream: each read of it
(up to 32 KiB) goes out as one message.

With --send, --until or --replies, listen is the server side of send: it
waits for one peer, sends, and exits 0 once the answer came, 3 if not.

Bounds: with -k, --idle forgets a UDP sender silent that long (a close
event; its next datagram opens it again) instead of ending the listener;
with --max-conns or --exec and no --idle, after 60s (an --exec process has
its stdin closed), so long-lived senders cannot hold every place for good;
and at most 16,384 senders are remembered (past that, the least recently
heard is forgotten). At the descriptor limit (ulimit -n) new clients are
closed at once, the cause is said once in a while, and clients are served
again as soon as descriptors free. Partial messages of all connections
share a 256 MiB budget: a connection refused more buffer is closed with
that reason. Without -k, a TLS listener serves the first client whose
handshake completes; silent ones hold nobody up. A unix socket file left
by a dead listener is replaced; a live one is refused (address already in
use), even one of another network namespace: wirecat finds out without
connecting, so a one-shot listener never takes the check for its peer.

DTLS (dtls://): each sender that completes a handshake is a connection,
each record one message, with certificates (the TLS flags) or a pre-shared
key (--psk). Senders that never return the cookie (spoofed ClientHellos)
are pushed out first when 512 handshakes are pending, and counted in one
notice every 10s; a failed handshake is one line, and the listener goes on.
With -k, an association nothing crossed for 5m ends (--idle sets it): a
client that vanished without close_notify gives its place back.

Examples:

    wirecat listen 5000                               # like nc -l 5000
    wirecat listen -k :5000 --frame line -o text > log &
    wirecat listen -u :5005 -o hex                    # UDP datagrams as hex
    wirecat listen tls://127.0.0.1:8443        # prints the cert's sha256 pin
    wirecat listen -k dtls://127.0.0.1:5684 --psk c0ffee --psk-identity s1
    wirecat listen -k 127.0.0.1:8080 --exec 'cat'     # an echo server
    wirecat listen -u -k 127.0.0.1:5005 --exec 'sed -u s/^/ack:/'  # per sender
    wirecat listen 127.0.0.1:0                 # prints the port it chose
    wirecat listen -k 127.0.0.1:6000 --chat           # a chat room
    wirecat listen -k 127.0.0.1:1883 --broker         # clients hear each other
    # the server side of the LED example, as a test:
    wirecat listen 127.0.0.1:5000 --frame line --send 'LED ON' \
        --until 'STATE ON' --wait 5s
    wirecat listen -u -k :5005 --idle 2m --max-conns 500   # sensors come and go
    wirecat listen pty:/tmp/ttyV0     # a tty at /tmp/ttyV0 for host software
    wirecat listen -k ws://127.0.0.1:8080/mqtt --subprotocol mqtt -o hex

A pty (pty:/path symlinks /path to /dev/pts/N, removed at exit) serves
whoever opens it; their close ends the session (with -k, the next opener is
the next peer). A serial port is opened exclusively and is the peer at once;
if its device vanishes, -k waits for it to come back (docs/serial.md).`
}

func (c *ListenCmd) Run(app *App, g *Globals) error {
	addr, err := c.addr()
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
	if err := c.check(addr); err != nil {
		return err
	}
	if c.Chat && c.Frame == "" {
		c.Frame = "line" // a chat is lines of text
	}
	p, err := plumb(c.ConnFlags.execApp(app, &c.DataFlags), g, &c.DataFlags, c.DataFlags.bothWays())
	if err != nil {
		return err
	}
	defer p.Close()
	p.separateDatagrams(&c.DataFlags, addr) // each datagram (WebSocket message) visibly one message
	c.ConnFlags.configure(p, addr)
	if c.Exec != "" && !link.IsLoopback(addr) {
		p.log.Warnf("--exec on %s: anyone who can reach it runs %q; listen on 127.0.0.1 to keep it local", addr, c.Exec)
	}
	var src pipe.Source
	var expect pipe.Expect
	if c.ExpectFlags.active() {
		if src, expect, err = c.expectation(p.cfg.Framer); err != nil {
			return err
		}
	} else if src, err = stdinSource(app, &c.DataFlags, &c.InputFlags, p.cfg.Framer, c.RecvOnly || c.Exec != ""); err != nil {
		return err
	}
	opts := p.linkOptions(&c.TLSFlags, c.Broadcast)
	opts.Interface = c.Interface
	opts.WaitDevice = c.KeepOpen
	if addr.Scheme == "dtls" && c.KeepOpen {
		// UDP has no end: vanished clients give their associations back.
		opts.DTLSIdle = c.Idle.D()
		if opts.DTLSIdle == 0 {
			opts.DTLSIdle = link.DefaultDTLSIdle
		}
		p.log.Debugf("dtls: associations nothing crosses for %v end (--idle)", opts.DTLSIdle)
	}
	if err := c.SerialFlags.apply(opts); err != nil {
		return err
	}

	if addr.Packet() {
		pc, err := link.ListenPacket(app.Ctx, addr, opts)
		if err != nil {
			return netError(err)
		}
		c.bound(p, addr, pc.LocalAddr())
		if c.Exec != "" {
			// One process per sender; its stdout answers that sender.
			x := pipe.NewPacketExec(app.Ctx, pc, p.cfg, c.Exec, c.MaxConns)
			defer x.Wait()
			p.cfg.Sink = event.Tee(p.cfg.Sink, x)
		}
		to := pipe.Latest
		if c.KeepOpen {
			to = pipe.All
		}
		p.cfg.Permit = acl.Permit
		if c.KeepOpen {
			p.cfg.MaxPeers = c.MaxConns
		}
		return pipe.ServePacket(app.Ctx, pc, addr.Transport(), p.cfg, src, to)
	}

	ln, err := link.Listen(app.Ctx, addr, opts)
	if err != nil {
		return netError(err)
	}
	c.bound(p, addr, ln.Addr())
	var broker *pipe.Broker
	if c.Broker || c.Chat {
		broker = &pipe.Broker{Hub: pipe.NewBroker(), Framer: p.cfg.Framer, Chat: c.Chat, Log: p.log}
	}
	var peer string       // without -k, the one peer an error is about
	var met *pipe.Outcome // with --send/--until/--replies, what the peer answered
	serve := func(conn net.Conn, feed pipe.Source) error {
		if !c.KeepOpen {
			peer = "peer " + conn.RemoteAddr().String()
		}
		m := pipe.Meta{ID: pipe.NextID(), Transport: addr.Transport(), Local: conn.LocalAddr().String(),
			Remote: conn.RemoteAddr().String(), Role: event.Server}
		p.log.Debugf("conn %d: accepted %s", m.ID, m.Remote)
		switch {
		case c.Exec != "":
			return pipe.ServeExec(app.Ctx, conn, m, p.cfg, c.Exec)
		case c.ExpectFlags.active():
			out, err := pipe.Send(app.Ctx, conn, m, p.cfg, feed, expect)
			met = &out
			return err
		case broker != nil:
			cfg := *p.cfg
			cfg.Sink = event.Tee(p.cfg.Sink, broker.Peer(m, feed))
			defer broker.Leave(m, feed)
			return pipe.Serve(app.Ctx, conn, m, &cfg, feed)
		}
		return pipe.Serve(app.Ctx, conn, m, p.cfg, feed)
	}
	peers := pipe.Peers{KeepOpen: c.KeepOpen, MaxConns: c.MaxConns, Permit: acl.Permit, Log: p.log}
	if broker != nil {
		peers.Hub = broker.Hub
	}
	if err := pipe.ServeListener(app.Ctx, ln, peers, src, serve); err != nil {
		return connError(peer, err)
	}
	if met != nil {
		return c.ExpectFlags.verdict(*met, expect)
	}
	return nil
}

// addr reads ADDR, PORT, or HOST PORT.
func (c *ListenCmd) addr() (link.Addr, error) {
	var a link.Addr
	var err error
	if c.Port != "" {
		a, err = link.JoinHostPort(c.Addr, c.Port, c.UDP)
	} else {
		a, err = link.ParseListen(c.Addr, c.UDP)
	}
	if err != nil {
		return a, usage(err)
	}
	return a, nil
}

// check refuses flag combinations that cannot mean anything.
func (c *ListenCmd) check(addr link.Addr) error {
	switch {
	case (c.Broker || c.Chat) && !c.KeepOpen:
		return usage(errors.New("--broker and --chat need -k: peers can only hear each other when there are several"))
	case (c.Broker || c.Chat) && (c.Exec != "" || addr.Datagram()):
		return usage(errors.New("--broker and --chat pass messages between stream peers (tcp, tls, unix): not with --exec or a datagram listener"))
	case c.ExpectFlags.active() && c.KeepOpen:
		return usage(errors.New("--send, --until and --replies talk to one peer: not with -k"))
	case c.ExpectFlags.active() && c.Exec != "":
		return usage(errors.New("--send, --until and --replies are answered by wirecat itself: not with --exec"))
	case c.ExpectFlags.active() && addr.Packet():
		return usage(errors.New("--send, --until and --replies need a stream listener (tcp, tls, unix); for UDP use `wirecat send`"))
	case c.Replies < 0:
		return usage(errors.New("--replies must be 0 or more"))
	}
	return nil
}

// expectation builds what --send sends and what --until/--replies expect.
func (c *ListenCmd) expectation(f proto.Framer) (pipe.Source, pipe.Expect, error) {
	x := pipe.Expect{Wait: c.Wait.D(), Replies: c.Replies}
	if c.Until != "" {
		until, err := proto.Unescape(c.Until)
		if err != nil {
			return nil, x, usage(fmt.Errorf("--until %q: %w", c.Until, err))
		}
		x.Until = until
	}
	msgs := make([]pipe.Message, len(c.Send))
	for i, s := range c.Send {
		payload, err := proto.Unescape(s)
		if err != nil {
			return nil, x, usage(fmt.Errorf("--send %q: %w", s, err))
		}
		wire, err := f.Encode(nil, payload)
		if err != nil {
			return nil, x, usage(fmt.Errorf("--send %q: %w", s, err))
		}
		msgs[i] = pipe.Message{Payload: payload, Wire: wire}
	}
	return pipe.Messages(msgs, 1), x, nil
}

// verdict is the exit status of listen --send/--until/--replies.
func (x *ExpectFlags) verdict(out pipe.Outcome, e pipe.Expect) error {
	why := fmt.Sprintf("nothing more arrived within --wait %v", time.Duration(x.Wait))
	if out.PeerClosed {
		why = "the peer closed"
	}
	switch {
	case out.Replies < x.Replies:
		return unmetError{fmt.Errorf("expected %d replies, got %d (%s)", x.Replies, out.Replies, why)}
	case len(e.Until) > 0 && !out.Found:
		return unmetError{fmt.Errorf("%q was not received (%s)", x.Until, why)}
	}
	return nil
}

// bound says where the listener is: always when the system chose the port
// (port 0), so the user can tell a client where to go; otherwise with -v.
func (c *ListenCmd) bound(p *plumbing, addr link.Addr, local net.Addr) {
	where := addr.Scheme + "://" + local.String()
	if addr.IsWebSocket() {
		where += addr.Path
	}
	if addr.Port == "0" {
		p.log.Notef("listening on %s", where)
		return
	}
	p.log.Debugf("listening on %s", where)
}
