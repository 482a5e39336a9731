package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirecat-dev/wirecat/access"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/pipe"
)

// handshakeTimeout bounds a TLS handshake, so a silent peer cannot hold a
// listener.
const handshakeTimeout = 10 * time.Second

// ListenCmd is `wirecat listen`.
type ListenCmd struct {
	Addr     string   `arg:"" placeholder:"ADDR" predictor:"addr" help:"Where to listen: [scheme://][host]:port, e.g. :5000, udp://:5005, tls://127.0.0.1:8443, unix:///tmp/x.sock."`
	KeepOpen bool     `short:"k" help:"Accept many peers, concurrently; stdin goes to all of them."`
	MaxConns int      `placeholder:"N" help:"With -k, refuse peers beyond N at once."`
	Allow    []string `placeholder:"CIDR" help:"Accept only peers in these networks."`
	Deny     []string `placeholder:"CIDR" help:"Refuse peers in these networks."`
	ConnFlags
	DataFlags
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
	c.ConnFlags.configure(p, addr)
	if c.Exec != "" && !link.IsLoopback(addr) {
		p.log.Warnf("--exec on %s: anyone who can reach it runs %q; listen on 127.0.0.1 to keep it local", addr, c.Exec)
	}
	src, err := stdinSource(app, &c.DataFlags, p.cfg.Framer, c.RecvOnly || c.Exec != "")
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
		return pipe.ServePacket(app.Ctx, pc, addr.Transport(), p.cfg, src, to)
	}

	ln, err := link.Listen(app.Ctx, addr, opts)
	if err != nil {
		return netError(err)
	}
	defer ln.Close()
	stop := context.AfterFunc(app.Ctx, func() { ln.Close() })
	defer stop()
	p.log.Debugf("listening on %s", addr.Scheme+"://"+ln.Addr().String())

	serve := func(conn net.Conn, src pipe.Source) error {
		m := pipe.Meta{ID: pipe.NextID(), Transport: addr.Transport(), Local: conn.LocalAddr().String(),
			Remote: conn.RemoteAddr().String(), Role: event.Server}
		p.log.Debugf("conn %d: accepted %s", m.ID, m.Remote)
		if c.Exec != "" {
			return pipe.ServeExec(app.Ctx, conn, m, p.cfg, c.Exec)
		}
		return pipe.Serve(app.Ctx, conn, m, p.cfg, src)
	}
	// A TLS peer counts once its handshake succeeds: one refused for its
	// certificate (or refusing ours) is reported, and the listener goes on
	// waiting, as for --allow.
	handshake := func(conn net.Conn) bool {
		hctx, cancel := context.WithTimeout(app.Ctx, handshakeTimeout)
		defer cancel()
		if err := link.Handshake(hctx, conn); err != nil {
			p.log.Notef("refused %s: %v", conn.RemoteAddr(), err)
			conn.Close()
			return false
		}
		return true
	}
	accept := func() (net.Conn, error) {
		for {
			conn, err := ln.Accept()
			if err != nil {
				if app.Ctx.Err() != nil {
					return nil, nil
				}
				return nil, err
			}
			if !acl.Permit(conn.RemoteAddr()) {
				p.log.Notef("refused %s: not allowed by --allow/--deny", conn.RemoteAddr())
				conn.Close()
				continue
			}
			if c.KeepOpen || handshake(conn) { // -k handshakes in the peer's goroutine
				return conn, nil
			}
		}
	}

	if !c.KeepOpen {
		conn, err := accept()
		if conn == nil {
			return err
		}
		ln.Close() // one peer only: nobody else should connect and hang
		return connError("peer "+conn.RemoteAddr().String(), serve(conn, src))
	}

	hub := pipe.NewHub()
	if src != nil {
		go func() {
			if err := hub.Run(src); err != nil {
				p.log.Errorf("stdin: %v", err)
			}
		}()
	}
	var wg sync.WaitGroup
	var active atomic.Int64
	defer wg.Wait()
	for {
		conn, err := accept()
		if conn == nil {
			if errors.Is(err, net.ErrClosed) {
				err = nil
			}
			return err
		}
		if c.MaxConns > 0 && active.Load() >= int64(c.MaxConns) {
			p.log.Notef("refused %s: --max-conns %d reached", conn.RemoteAddr(), c.MaxConns)
			conn.Close()
			continue
		}
		active.Add(1)
		wg.Add(1)
		var feed pipe.Source
		done := func() {}
		if src != nil {
			feed, done = hub.Subscribe()
		}
		go func() {
			defer wg.Done()
			defer active.Add(-1)
			defer done()
			if !handshake(conn) {
				return
			}
			if err := serve(conn, feed); err != nil {
				p.log.Notef("peer %s: %s", conn.RemoteAddr(), link.Cause(err))
			}
		}()
	}
}
