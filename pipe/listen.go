package pipe

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/wirecat-dev/wirecat/diag"
	"github.com/wirecat-dev/wirecat/link"
)

// Peers says how a stream listener takes its peers.
type Peers struct {
	KeepOpen bool                // many peers at once; otherwise the first one only
	MaxConns int                 // with KeepOpen, refuse peers beyond this many at once (0: no limit)
	Permit   func(net.Addr) bool // --allow/--deny; nil lets everyone in
	Log      *diag.Log
	// Hub, when set, is the hub the peers of KeepOpen subscribe to (a
	// broker: every peer gets a feed, stdin or not).
	Hub *Hub
}

// handshakeTimeout bounds a TLS handshake, so a silent peer cannot hold a
// listener.
const handshakeTimeout = 10 * time.Second

// ServeListener accepts peers from ln and hands each to serve with its
// share of src: without KeepOpen the first peer gets src itself and the
// listener closes, so nobody else connects and hangs; with KeepOpen every
// peer gets what src says from then on. A TLS peer counts once its
// handshake succeeds: one refused for its certificate (or refusing ours) is
// reported and the listener goes on waiting. ServeListener returns when ctx
// ends, or with the single peer's error.
func ServeListener(ctx context.Context, ln net.Listener, ps Peers, src Source, serve func(net.Conn, Source) error) error {
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	handshake := func(conn net.Conn) bool {
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		defer cancel()
		if err := link.Handshake(hctx, conn); err != nil {
			ps.Log.Notef("refused %s: %v", conn.RemoteAddr(), err)
			conn.Close()
			return false
		}
		return true
	}
	accept := func() (net.Conn, error) {
		for {
			conn, err := ln.Accept()
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return nil, nil
				}
				return nil, err
			}
			if ps.Permit != nil && !ps.Permit(conn.RemoteAddr()) {
				ps.Log.Notef("refused %s: not allowed by --allow/--deny", conn.RemoteAddr())
				conn.Close()
				continue
			}
			if ps.KeepOpen || handshake(conn) { // -k handshakes in the peer's goroutine
				return conn, nil
			}
		}
	}

	if !ps.KeepOpen {
		conn, err := accept()
		if conn == nil {
			return err
		}
		ln.Close()
		return serve(conn, src)
	}

	hub := ps.Hub
	if hub == nil {
		hub = NewHub()
	}
	if src != nil {
		go func() {
			if err := hub.Run(src); err != nil {
				ps.Log.Errorf("stdin: %v", err)
			}
		}()
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	active := 0
	var mu sync.Mutex
	for {
		conn, err := accept()
		if conn == nil {
			return err
		}
		mu.Lock()
		full := ps.MaxConns > 0 && active >= ps.MaxConns
		if !full {
			active++
		}
		mu.Unlock()
		if full {
			ps.Log.Notef("refused %s: --max-conns %d reached", conn.RemoteAddr(), ps.MaxConns)
			conn.Close()
			continue
		}
		var feed Source
		done := func() {}
		if src != nil || ps.Hub != nil {
			feed, done = hub.Subscribe()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { mu.Lock(); active--; mu.Unlock() }()
			defer done()
			if !handshake(conn) {
				return
			}
			if err := serve(conn, feed); err != nil {
				ps.Log.Notef("peer %s: %s", conn.RemoteAddr(), link.Cause(err))
			}
		}()
	}
}
