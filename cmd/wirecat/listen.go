package main

import (
	"fmt"
	"net"

	"github.com/wirecat-dev/wirecat/access"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/pipe"
)

// ListenCmd is `wirecat listen`.
type ListenCmd struct {
	Addr     string   `arg:"" placeholder:"ADDR" predictor:"addr" help:"Where to listen: [scheme://][host]:port, e.g. :5000, udp://:5005, tls://127.0.0.1:8443, unix:///tmp/x.sock."`
	KeepOpen bool     `short:"k" help:"Accept many peers, concurrently; stdin goes to all of them."`
	MaxConns int      `placeholder:"N" help:"With -k, refuse peers beyond N at once."`
	Allow    []string `placeholder:"CIDR" help:"Accept only peers in these networks."`
	Deny     []string `placeholder:"CIDR" help:"Refuse peers in these networks."`
	ConnFlags
	DataFlags
	InputFlags
	TLSFlags
}

func (c *ListenCmd) Help() string {
	return `Accepts one peer (with -k, many) and wires it to stdin/stdout or --exec.
Without -k, wirecat exits when its one peer is done. A UDP listener tags
each datagram with its sender and answers the most recent one (with -k,
every known peer).

Examples:

    wirecat listen :5000                              # like nc -l 5000
    wirecat listen -k :5000 --frame line -o text > log &
    wirecat listen -u :5005 -o hex                    # UDP datagrams as hex
    wirecat listen tls://127.0.0.1:8443        # prints the cert's sha256 pin
    wirecat listen -k 127.0.0.1:8080 --exec 'cat'     # an echo server`
}

func (c *ListenCmd) Run(app *App, g *Globals) error {
	addr, err := parseAddr(c.Addr, c.UDP)
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
	p, err := plumb(c.ConnFlags.execApp(app, &c.DataFlags), g, &c.DataFlags, false)
	if err != nil {
		return err
	}
	defer p.Close()
	if addr.Packet() {
		p.separateDatagrams(&c.DataFlags) // each datagram visibly one message
	}
	c.ConnFlags.configure(p, addr)
	if c.Exec != "" && !link.IsLoopback(addr) {
		p.log.Warnf("--exec on %s: anyone who can reach it runs %q; listen on 127.0.0.1 to keep it local", addr, c.Exec)
	}
	src, err := stdinSource(app, &c.DataFlags, &c.InputFlags, p.cfg.Framer, c.RecvOnly || c.Exec != "")
	if err != nil {
		return err
	}
	opts := linkOptions(&c.TLSFlags, c.Broadcast, p.log)
	opts.Interface = c.Interface

	if addr.Packet() {
		if c.Exec != "" {
			return usage(fmt.Errorf("--exec needs a stream transport (tcp, tls or unix), not %s", addr.Scheme))
		}
		pc, err := link.ListenPacket(app.Ctx, addr, opts)
		if err != nil {
			return netError(err)
		}
		p.log.Debugf("listening on %s", addr.Scheme+"://"+pc.LocalAddr().String())
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
	p.log.Debugf("listening on %s", addr.Scheme+"://"+ln.Addr().String())
	var peer string // without -k, the one peer an error is about
	serve := func(conn net.Conn, src pipe.Source) error {
		if !c.KeepOpen {
			peer = "peer " + conn.RemoteAddr().String()
		}
		m := pipe.Meta{ID: pipe.NextID(), Transport: addr.Transport(), Local: conn.LocalAddr().String(),
			Remote: conn.RemoteAddr().String(), Role: event.Server}
		p.log.Debugf("conn %d: accepted %s", m.ID, m.Remote)
		if c.Exec != "" {
			return pipe.ServeExec(app.Ctx, conn, m, p.cfg, c.Exec)
		}
		return pipe.Serve(app.Ctx, conn, m, p.cfg, src)
	}
	peers := pipe.Peers{KeepOpen: c.KeepOpen, MaxConns: c.MaxConns, Permit: acl.Permit, Log: p.log}
	return connError(peer, pipe.ServeListener(app.Ctx, ln, peers, src, serve))
}
