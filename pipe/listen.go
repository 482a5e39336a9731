package pipe

import (
	"context"
	"crypto/tls"
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

const (
	// handshakeTimeout bounds a TLS handshake, so a silent peer cannot hold
	// a descriptor (or, without -k, the listener) for long.
	handshakeTimeout = 10 * time.Second
	// maxHandshakes bounds the TLS handshakes a one-shot listener runs at
	// once while it waits for its one peer: enough that silent clients
	// cannot crowd out a real one, few enough to cost little.
	maxHandshakes = 64
)

// ServeListener accepts peers from ln and hands each to serve with its
// share of src: without KeepOpen the first peer gets src itself and the
// listener closes, so nobody else connects and hangs; with KeepOpen every
// peer gets what src says from then on. A TLS peer counts once its
// handshake succeeds: one refused for its certificate (or refusing ours),
// or silent, is reported and the listener goes on waiting, serving the
// first peer whose handshake completes. At the descriptor limit the
// listener closes new clients at once, says so, and serves again as soon as
// descriptors free (link.Acceptor). ServeListener returns when ctx ends, or
// with the single peer's error.
func ServeListener(ctx context.Context, ln net.Listener, ps Peers, src Source, serve func(net.Conn, Source) error) error {
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	acc := link.NewAcceptor(ln, ps.Log.Notef)
	defer acc.Close()

	handshake := func(hctx context.Context, conn net.Conn) bool {
		hctx, cancel := context.WithTimeout(hctx, handshakeTimeout)
		defer cancel()
		if err := link.Handshake(hctx, conn); err != nil {
			if ctx.Err() == nil && hctx.Err() != context.Canceled {
				ps.Log.Notef("refused %s: %v", conn.RemoteAddr(), err)
			}
			conn.Close()
			return false
		}
		return true
	}
	// accept returns the next permitted peer; nil when the listener is
	// closed or ctx ends.
	accept := func() (net.Conn, error) {
		for {
			conn, err := acc.Accept(ctx)
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
			return conn, nil
		}
	}

	if !ps.KeepOpen {
		conn, err := acceptOne(ctx, ln, accept, handshake, ps.Log)
		if conn == nil {
			return err
		}
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
			if !handshake(ctx, conn) { // -k handshakes in the peer's goroutine
				return
			}
			if err := serve(conn, feed); err != nil {
				ps.Log.Notef("peer %s: %s", conn.RemoteAddr(), link.Cause(err))
			}
		}()
	}
}

// acceptOne returns a one-shot listener's peer and closes ln: the first
// plain connection, or the first TLS connection whose handshake completes.
// Handshakes run side by side (at most maxHandshakes), so a client that
// connects and says nothing holds nobody up.
func acceptOne(ctx context.Context, ln net.Listener, accept func() (net.Conn, error),
	handshake func(context.Context, net.Conn) bool, log *diag.Log) (net.Conn, error) {
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		winner  net.Conn
		pending sync.WaitGroup
	)
	// claim makes c the peer if there is none yet, and stops the rest.
	claim := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if winner != nil {
			return false
		}
		winner = c
		ln.Close() // nobody else connects and hangs
		cancel()   // the other handshakes give up
		return true
	}
	slots := make(chan struct{}, maxHandshakes)
	var err error
	for {
		conn, aerr := accept()
		if conn == nil {
			err = aerr
			break
		}
		if _, ok := conn.(*tls.Conn); !ok {
			if !claim(conn) {
				conn.Close()
			}
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			log.Notef("refused %s: %d TLS handshakes already pending", conn.RemoteAddr(), maxHandshakes)
			conn.Close()
			continue
		}
		pending.Add(1)
		go func() {
			defer pending.Done()
			defer func() { <-slots }()
			if handshake(hctx, conn) && !claim(conn) {
				conn.Close()
			}
		}()
	}
	cancel()
	pending.Wait()
	mu.Lock()
	defer mu.Unlock()
	if winner != nil {
		return winner, nil
	}
	return nil, err
}
