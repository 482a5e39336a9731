package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/pipe"
	"github.com/wirecat-dev/wirecat/units"
)

// ConnFlags shape one connection wired to stdin/stdout.
type ConnFlags struct {
	UDP       bool           `short:"u" help:"Read a scheme-less address as UDP."`
	Broadcast bool           `help:"Allow sending to broadcast addresses."`
	Interface string         `placeholder:"NAME" help:"Multicast: the network interface a group is joined on and sent out of (default: the system's choice)."`
	RecvOnly  bool           `help:"Never read stdin and never half-close."`
	SendOnly  bool           `help:"Ignore what arrives."`
	Idle      units.Duration `placeholder:"DUR" help:"End a connection silent for this long."`
	Exec      string         `placeholder:"CMD" help:"Run CMD per connection with its stdin/stdout wired to the peer; WIRECAT_REMOTE_ADDR, _REMOTE_PORT, _LOCAL_ADDR, _LOCAL_PORT, _PROTO and _CONN_ID describe it."`
}

// ConnectCmd is `wirecat connect`.
type ConnectCmd struct {
	Addr      string   `arg:"" placeholder:"ADDR|HOST" predictor:"addr" help:"Where to connect: [scheme://]host:port (tcp, udp, tls, dtls, unix, unixgram...), serial:/dev/ttyUSB0?baud=9600 or pty:[/path], or HOST with PORT after it, as nc takes them."`
	Port      []string `arg:"" optional:"" placeholder:"PORT" help:"The port, when the first argument is a bare HOST; with -z, the ports to try: 22, 1-1024, 22,80,8000-8100 (or several arguments, as nc -z takes them)."`
	Reconnect bool     `help:"When the peer goes away (closes or resets) before stdin ends, connect again and carry on with stdin (TCP, TLS, unix); implies --retry forever unless --retry is given. -v reports each reconnection."`
	Scan      bool     `short:"z" help:"Only find which TCP ports of HOST accept a connection (nc -z): print 'PORT open' for each (-o json: every port and its state), exit 0 if any does. -w is the wait per port (default 2s)."`
	ConnFlags
	DialFlags
	DataFlags
	InputFlags
	TLSFlags
	SerialFlags
}

func (c *ConnectCmd) Help() string {
	return `Wires a connection to stdin and stdout. When stdin ends the write side is
shut down (TCP half-close) and wirecat prints until the peer closes.
-o text, hex and json show both directions, tagged; -o raw (the default)
prints only what arrives.

ws://host:port/path and wss://... speak WebSocket: each message sent
(a read of stdin, or a line with -i lines) is one WebSocket message,
binary unless --ws-text, and each message received is printed on a line of
its own (with an explicit -o raw, as it is). WebSocket has no half-close:
once stdin ends, replies are awaited for half a second of silence, then
the connection is closed with code 1000.

Examples:

    printf 'GET / HTTP/1.0\r\n\r\n' | wirecat connect example.com 80
    wirecat connect -u 127.0.0.1 5005                 # UDP, netcat style
    wirecat connect tls://127.0.0.1:8443 --pin sha256:3f2a...
    wirecat connect dtls://127.0.0.1:5684 --psk c0ffee --psk-identity s1
    wirecat connect unix:///tmp/board.sock --frame line -o text
    wirecat connect 127.0.0.1:5000 --frame delim:END -o json
    wirecat connect -w 2s -s 127.0.0.2 127.0.0.1 5000  # give up after 2s
    wirecat connect -z 127.0.0.1 1-1024               # which ports accept?
    wirecat connect serial:/dev/ttyUSB0 --baud 9600   # a board's console
    wirecat connect ws://127.0.0.1:8080/echo -i lines  # a message per line
    wirecat connect --reconnect -v 127.0.0.1 5000     # survive a board's reboot
    wirecat connect --proxy socks5://127.0.0.1:1080 10.0.0.7 502`
}

func (c *ConnectCmd) Run(app *App, g *Globals) error {
	if c.Scan {
		return c.scan(app, g)
	}
	addr, err := c.addr()
	if err != nil {
		return err
	}
	p, err := plumb(c.ConnFlags.execApp(app, &c.DataFlags), g, &c.DataFlags, c.DataFlags.bothWays())
	if err != nil {
		return err
	}
	defer p.Close()
	p.separateDatagrams(&c.DataFlags, addr) // each datagram (WebSocket message) visibly one message
	src, err := stdinSource(app, &c.DataFlags, &c.InputFlags, p.cfg.Framer, c.RecvOnly || c.Exec != "")
	if err != nil {
		return err
	}
	start := time.Now()
	opts := p.linkOptions(&c.TLSFlags, c.Broadcast)
	opts.Interface = c.Interface
	if err := c.SerialFlags.apply(opts); err != nil {
		return err
	}
	if err := c.DialFlags.apply(app, opts, addr); err != nil {
		return err
	}
	if c.Reconnect {
		return c.reconnect(app, p, addr, opts, src)
	}
	conn, err := link.Dial(app.Ctx, addr, opts)
	if err != nil {
		return netError(err)
	}
	p.log.Debugf("connected to %s from %s in %v", addr, conn.LocalAddr(), time.Since(start).Round(time.Microsecond))
	m := pipe.Meta{ID: pipe.NextID(), Transport: addr.Transport(), Local: conn.LocalAddr().String(),
		Remote: conn.RemoteAddr().String(), Role: event.Client}
	c.ConnFlags.configure(p, addr)
	if c.Exec != "" {
		return connError(addr.String(), pipe.ServeExec(app.Ctx, conn, m, p.cfg, c.Exec))
	}
	return connError(addr.String(), pipe.Serve(app.Ctx, conn, m, p.cfg, src))
}

// reconnect serves connection after connection to addr until stdin is done.
func (c *ConnectCmd) reconnect(app *App, p *plumbing, addr link.Addr, opts *link.Options, src pipe.Source) error {
	switch {
	case !addr.Stream():
		return usage(fmt.Errorf("--reconnect needs a stream (tcp, tls, unix), not %s: a datagram peer never goes away", addr.Scheme))
	case c.Exec != "":
		return usage(fmt.Errorf("--reconnect and --exec do not go together: the command's input cannot be replayed"))
	}
	if c.Retry == "" {
		opts.Retry = link.RetryForever
	}
	c.ConnFlags.configure(p, addr)
	dial := func(ctx context.Context) (net.Conn, pipe.Meta, error) {
		start := time.Now()
		conn, err := link.Dial(ctx, addr, opts)
		if err != nil {
			return nil, pipe.Meta{}, netError(err)
		}
		p.log.Debugf("connected to %s from %s in %v", addr, conn.LocalAddr(), time.Since(start).Round(time.Microsecond))
		return conn, pipe.Meta{ID: pipe.NextID(), Transport: addr.Transport(), Local: conn.LocalAddr().String(),
			Remote: conn.RemoteAddr().String(), Role: event.Client}, nil
	}
	return connError(addr.String(), pipe.Redial(app.Ctx, dial, p.cfg, src, opts.NextBackoff))
}

// addr reads ADDR, or HOST PORT.
func (c *ConnectCmd) addr() (link.Addr, error) {
	switch len(c.Port) {
	case 0:
		return parseAddr(c.Addr, c.UDP)
	case 1:
	default:
		return link.Addr{}, usage(fmt.Errorf("one port to connect to, not %d (-z tries several)", len(c.Port)))
	}
	a, err := link.JoinHostPort(c.Addr, c.Port[0], c.UDP)
	if err != nil {
		return a, usage(err)
	}
	return a, nil
}

// connError names the connection an established session failed on, with
// the cause in a few words: "tcp://127.0.0.1:5000: connection reset by
// peer", "tls://...: the server requires a client certificate (...)".
// Other errors (a bad stdin line, a frame over --max-frame) say
// enough on their own.
func connError(name string, err error) error {
	var ne net.Error
	var errno syscall.Errno
	if err == nil || !(errors.As(err, &ne) || errors.As(err, &errno)) {
		return err
	}
	return &connErr{name: name, err: err}
}

type connErr struct {
	name string
	err  error
}

func (e *connErr) Error() string { return e.name + ": " + link.Cause(e.err) }
func (e *connErr) Unwrap() error { return e.err }

// execApp is the App a data command prints with: with --exec the command
// answers the peer and stdout stays quiet, as with ncat -e, unless -o asks
// to watch the traffic.
func (c *ConnFlags) execApp(app *App, d *DataFlags) *App {
	if c.Exec == "" || d.Output != "" {
		return app
	}
	quiet := *app
	quiet.Stdout = io.Discard
	return &quiet
}

// configure applies the connection flags to the pipe.
func (c *ConnFlags) configure(p *plumbing, addr link.Addr) {
	p.cfg.Idle = c.Idle.D()
	p.cfg.SendOnly = c.SendOnly
	p.cfg.Linger = 500 * time.Millisecond
	if addr.Datagram() {
		p.cfg.Linger = time.Second // how long replies to the last datagram may take
	}
}

// bothWays reports an output that shows what wirecat sends beside what it
// receives, tagged by direction (socat -v/-x, ncat -x): the human and JSON
// views. raw and lines stay the received bytes only, so stdout is data.
func (d *DataFlags) bothWays() bool {
	switch d.outputMode() {
	case "text", "hex", "json":
		return true
	}
	return false
}
