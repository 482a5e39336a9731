// Package relay sits between a client and a server: every peer accepted on
// the listening side gets its own connection to the target, any transport to
// any transport (tcp, tls, unix streams; udp, unixgram datagrams), with
// inspection, Lua hooks and network faults on the way.
//
// A pair with nothing to do on the way (no framing, inspection, hook or
// fault) between two streams is handed to io.Copy on the bare connections,
// so TCP to TCP (and Unix to TCP) moves through splice(2) on Linux without
// entering user space.
package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirecat-dev/wirecat/access"
	"github.com/wirecat-dev/wirecat/diag"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/pipe"
	"github.com/wirecat-dev/wirecat/proto"
	"github.com/wirecat-dev/wirecat/script/guard"
)

const (
	// DefaultIdle ends a datagram session silent for this long when
	// Config.Idle is 0: a datagram peer never says it is done.
	DefaultIdle = 60 * time.Second
	// linger is how long a pair lives after one direction ended while the
	// other one carries datagrams, which never end by themselves.
	linger      = time.Second
	dialTimeout = 10 * time.Second
	maxQueue    = 4 << 20 // bytes a delayed direction may hold before reading pauses
	maxDatagram = 65507
)

// Config says how a relay runs. The zero value of every field but Target
// means "off".
type Config struct {
	Target   link.Addr
	Dial     *link.Options // for the connection to Target
	Framer   proto.Framer  // nil or raw: bytes as they come, no message boundaries
	MaxFrame int
	Sink     event.Sink   // inspection and recording; nil shows nothing
	Flush    func() error // flushes Sink's output before blocking on the network
	Hooks    *Hooks
	Faults   Faults // the faults at the start; SetFaults changes them
	// Dynamic says the faults may change while the relay runs (a control
	// endpoint, a schedule): every pair then goes message by message, so a
	// change reaches pairs already open, and pairs are listed.
	Dynamic  bool
	MaxConns int          // pairs (datagram sessions included) at once; 0: no limit
	Access   *access.List // which clients may connect; nil: everyone
	// Idle ends a pair silent for this long. 0: never for stream clients,
	// DefaultIdle for datagram sessions.
	Idle time.Duration
	Log  *diag.Log
}

// Relay accepts clients and relays each to its own connection to the target.
type Relay struct {
	cfg      Config
	active   atomic.Int64
	pairs    atomic.Int64
	zeroCopy atomic.Int64
	wg       sync.WaitGroup
	// limitNote quiets the note of clients closed at the descriptor limit.
	limitNote rateNote
	faults    atomic.Pointer[Faults] // now in force
	// pairs open now, by id, when Config.Dynamic (for the control API and
	// outages).
	openMu sync.Mutex
	open   map[uint64]*pair
	down   atomic.Pointer[string]        // an outage in force: why new clients are refused
	held   atomic.Pointer[chan struct{}] // a stall in force: closed when it ends
}

// limitNoteEvery is how often the relay repeats that it closes clients for
// want of descriptors: a flood of clients at the limit would otherwise print
// a line each.
const limitNoteEvery = 10 * time.Second

// rateNote lets one note through per limitNoteEvery and counts the others.
type rateNote struct {
	mu    sync.Mutex
	last  time.Time
	quiet int
}

// note returns notef when a note is due, else a function that counts the
// note without printing it. A note printed after quiet ones says how many.
func (n *rateNote) note(notef func(string, ...any)) func(string, ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if time.Since(n.last) < limitNoteEvery {
		n.quiet++
		return func(string, ...any) {}
	}
	n.last = time.Now()
	quiet := n.quiet
	n.quiet = 0
	return func(format string, args ...any) {
		if quiet > 0 {
			format += " (%d more at the limit not shown)"
			args = append(args, quiet)
		}
		notef(format, args...)
	}
}

// New returns a relay for cfg.
func New(cfg Config) *Relay {
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = proto.DefaultMaxFrame
	}
	if proto.IsRaw(cfg.Framer) {
		cfg.Framer = nil
	}
	if cfg.Sink == nil {
		cfg.Flush = nil // nothing to flush: spare every read the lock
	}
	r := &Relay{cfg: cfg}
	f := cfg.Faults
	r.faults.Store(&f)
	if cfg.Dynamic {
		r.open = map[uint64]*pair{}
	}
	return r
}

// Stats counts pairs.
type Stats struct {
	Active   int64 // pairs open now
	Pairs    int64 // pairs opened since the start
	ZeroCopy int64 // pairs that took the io.Copy path between bare connections
}

// Stats returns the counters so far.
func (r *Relay) Stats() Stats {
	return Stats{Active: r.active.Load(), Pairs: r.pairs.Load(), ZeroCopy: r.zeroCopy.Load()}
}

// plain reports whether nothing has to look at or delay the bytes.
func (r *Relay) plain() bool {
	return r.cfg.Sink == nil && r.cfg.Hooks == nil && !r.cfg.Faults.Active() && r.cfg.Framer == nil && !r.cfg.Dynamic
}

// admit applies --allow/--deny and --max-conns to a new client.
func (r *Relay) admit(addr net.Addr, quietly bool) bool {
	note := r.cfg.Log.Notef
	if quietly {
		note = r.cfg.Log.Debugf // a datagram sender would repeat it with every datagram
	}
	if !r.cfg.Access.Permit(addr) {
		note("refused %s: not allowed by --allow/--deny", addr)
		return false
	}
	if why := r.down.Load(); why != nil {
		r.cfg.Log.Debugf("refused %s: %s", addr, *why)
		return false
	}
	if r.cfg.MaxConns > 0 && r.active.Load() >= int64(r.cfg.MaxConns) {
		note("refused %s: --max-conns %d reached", addr, r.cfg.MaxConns)
		return false
	}
	return true
}

// Serve accepts stream clients on ln until ctx ends, then closes every pair
// and returns once they are all closed. It closes ln. The accept loop is
// pipe.ServeListener's, so the relay shares its bounds: --allow/--deny,
// --max-conns, TLS handshakes, and the descriptor limit (new clients are
// closed at once and served again as soon as descriptors free).
func (r *Relay) Serve(ctx context.Context, ln net.Listener, transport string) error {
	local := ln.Addr().String()
	ps := pipe.Peers{KeepOpen: true, MaxConns: r.cfg.MaxConns, Log: r.cfg.Log}
	if r.cfg.Access != nil {
		ps.Permit = r.cfg.Access.Permit
	}
	return pipe.ServeListener(ctx, ln, ps, nil, func(c net.Conn, _ pipe.Source) error {
		if why := r.down.Load(); why != nil {
			r.refuse(c, *why)
			return nil
		}
		if !r.waitHeld(ctx.Done()) {
			c.Close()
			return nil
		}
		r.active.Add(1)
		defer r.active.Add(-1)
		r.serveStream(ctx, c, transport, local)
		return nil
	})
}

func (r *Relay) serveStream(ctx context.Context, c net.Conn, transport, local string) {
	id := pipe.NextID()
	if tc, ok := c.(interface{ SetKeepAlive(bool) error }); ok {
		tc.SetKeepAlive(true)
	}
	_, datagram := c.(link.Datagrammer) // dtls: one message per record
	_, ws := c.(*link.WSConn)           // a WebSocket client sends messages, not a stream
	client := &side{from: event.Client, conn: c, addr: c.RemoteAddr().String(), stream: !datagram && !ws}
	client.close = func() { c.Close() }
	r.run(ctx, id, transport, local, client)
}

// dial connects the server side of pair id.
func (r *Relay) dial(ctx context.Context) (*side, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := link.Dial(dctx, r.cfg.Target, r.cfg.Dial)
	if err != nil {
		return nil, err
	}
	s := &side{from: event.Server, conn: c, addr: r.cfg.Target.String(), stream: r.cfg.Target.Stream()}
	if ra := c.RemoteAddr(); ra != nil && ra.String() != "" {
		s.addr = ra.String()
	}
	s.close = func() { c.Close() }
	return s, nil
}

// run dials the target for client and relays until the pair is done.
func (r *Relay) run(ctx context.Context, id uint64, transport, local string, client *side) {
	r.pairs.Add(1)
	p := &pair{r: r, id: id, transport: transport, local: local, client: client, done: make(chan struct{})}
	server, err := r.dial(ctx)
	if err != nil {
		if ctx.Err() != nil {
			client.close()
			return
		}
		note := r.cfg.Log.Notef
		if link.Exhausted(err) {
			note = r.limitNote.note(note) // one line per period at the limit, not one per client
		}
		note("conn %d: %s: target %s: %v; closing the client", id, client.addr, r.cfg.Target, err)
		p.emit(event.Open, 0, nil, nil)
		p.emit(event.Error, 0, nil, fmt.Errorf("target %s: %w", r.cfg.Target, err))
		p.emit(event.Close, event.Relay, nil, err)
		p.flush()
		client.close()
		return
	}
	p.server = server
	if server.addr != "" {
		// A relay's events name the two ends it joins, client and target,
		// so a recording replays and exports as the real conversation.
		p.local = server.addr
	}
	p.serve(ctx)
}

// side is one end of a pair.
type side struct {
	from   event.Side // what this end is: client or server
	conn   net.Conn   // nil for a datagram session
	addr   string
	stream bool
	src    source // nil: made from conn when the pair needs messages
	sink   sink   // nil: made from conn
	close  func()
}

// pair is one client and its connection to the target.
type pair struct {
	r                 *Relay
	id                uint64
	transport, local  string
	client, server    *side
	hooks             *hookConn
	start             time.Time
	timed             bool         // an idle limit may apply, so traffic is timed (last)
	last              atomic.Int64 // unix nanoseconds of the latest traffic
	idle              atomic.Int64 // current idle limit in nanoseconds; 0: none
	sent              atomic.Int64 // bytes both ways, for --cut-after SIZE
	up, down          *flow
	upBytes, downByte atomic.Int64

	watchOnce sync.Once
	poke      chan struct{}
	endOnce   sync.Once
	done      chan struct{} // closed when the pair is being torn down
	endBy     event.Side
	endErr    error
}

// events spares a relay an allocation per message shown or recorded: a
// Sink that keeps an event copies it (event.Event's contract).
var events = sync.Pool{New: func() any { return new(event.Event) }}

func (p *pair) emit(k event.Kind, from event.Side, data []byte, err error) {
	p.emitWire(k, from, data, nil, err, nil)
}

// emitWire is emit with a data event's wire bytes, and why they made no
// message (event.Event's Wire and Unframed).
func (p *pair) emitWire(k event.Kind, from event.Side, data, wire []byte, err, unframed error) {
	if p.r.cfg.Sink == nil {
		return
	}
	e := events.Get().(*event.Event)
	*e = event.Event{Kind: k, Time: time.Now(), Conn: p.id, Transport: p.transport, Local: p.local,
		Remote: p.client.addr, Role: event.Relay, From: from, Data: data, Wire: wire, Err: err, Unframed: unframed}
	p.r.cfg.Sink.Emit(e)
	*e = event.Event{} // hold on to nothing
	events.Put(e)
}

// emitClose emits the pair's close, with the WebSocket close frame that
// ended it when a side is a WebSocket: one a peer sent (and that peer as
// the closer), else one the relay sent.
func (p *pair) emitClose(by event.Side, err error) {
	if p.r.cfg.Sink == nil {
		return
	}
	e := &event.Event{Kind: event.Close, Time: time.Now(), Conn: p.id, Transport: p.transport, Local: p.local,
		Remote: p.client.addr, Role: event.Relay, From: by, Err: err}
found:
	for _, peer := range []bool{true, false} {
		for _, s := range []*side{p.client, p.server} {
			wc, ok := s.conn.(*link.WSConn)
			if !ok {
				continue
			}
			if code, reason, byPeer, ok := wc.CloseFrame(); ok && byPeer == peer {
				e.Code, e.Reason = code, reason
				if peer {
					e.From = s.from
				}
				break found
			}
		}
	}
	p.r.cfg.Sink.Emit(e)
}

func (p *pair) flush() {
	if p.r.cfg.Flush != nil {
		p.r.cfg.Flush()
	}
}

func (p *pair) touch() { p.last.Store(time.Now().UnixNano()) }

// end tears the pair down once, remembering the first reason.
func (p *pair) end(by event.Side, err error) {
	p.endOnce.Do(func() {
		p.endBy, p.endErr = by, err
		close(p.done)
		p.client.close()
		p.server.close()
	})
}

// reset ends the pair with a TCP RST on both sides where they are TCP (a
// linger of 0 makes close send it), and err as the reason.
func (p *pair) reset(err error) {
	for _, s := range []*side{p.client, p.server} {
		if s == nil || s.conn == nil {
			continue
		}
		c := s.conn
		if nc, ok := c.(interface{ NetConn() net.Conn }); ok { // TLS
			c = nc.NetConn()
		}
		if l, ok := c.(interface{ SetLinger(int) error }); ok {
			l.SetLinger(0)
		}
	}
	p.end(event.Relay, err)
}

// errStopped ends pairs when the relay shuts down; it is not reported.
var errStopped = errors.New("relay stopping")

// errIdle ends a silent pair; it is not a failure.
var errIdle = errors.New("idle")

type result struct {
	from event.Side // the sending side of the direction
	err  error
}

func (p *pair) serve(ctx context.Context) {
	cfg := &p.r.cfg
	p.start = time.Now()
	p.touch()
	p.r.register(p)
	defer p.r.unregister(p)
	log := cfg.Log
	log.Debugf("conn %d: %s → %s", p.id, p.client.addr, p.server.addr)
	p.emit(event.Open, 0, nil, nil)
	if cfg.Hooks != nil {
		p.hooks = cfg.Hooks.open(p)
	}
	stop := context.AfterFunc(ctx, func() { p.end(event.Relay, errStopped) })
	defer stop()
	if f := p.r.faults.Load(); f.CutTime > 0 {
		t := time.AfterFunc(f.CutTime, func() {
			p.end(event.Relay, fmt.Errorf("cut after %v (--cut-after)", f.CutTime))
		})
		defer t.Stop()
	}
	if f := p.r.faults.Load(); f.ResetTime > 0 {
		t := time.AfterFunc(f.ResetTime, func() {
			p.reset(fmt.Errorf("reset after %v (--reset)", f.ResetTime))
		})
		defer t.Stop()
	}
	idle := cfg.Idle
	if _, ws := p.client.conn.(*link.WSConn); idle == 0 && !p.client.stream && !ws {
		idle = DefaultIdle
	}
	// Without an idle limit, only a datagram side can bring one (linger,
	// below); two streams spare every message the clock read.
	p.timed = idle > 0 || !p.client.stream || !p.server.stream
	p.setIdle(idle)

	results := make(chan result, 2)
	if p.r.plain() && p.client.stream && p.server.stream && idle == 0 {
		p.r.zeroCopy.Add(1)
		go p.copy(p.server.conn, p.client.conn, event.Client, &p.upBytes, results)
		go p.copy(p.client.conn, p.server.conn, event.Server, &p.downByte, results)
	} else {
		p.up = newFlow(p, p.client, p.server, &p.upBytes)
		p.down = newFlow(p, p.server, p.client, &p.downByte)
		go func() { results <- result{event.Client, p.up.run()} }()
		go func() { results <- result{event.Server, p.down.run()} }()
	}

	first := <-results
	switch {
	case first.err != nil:
		p.end(first.from, first.err)
	default:
		// One side is done sending; the other was half-closed and may still
		// answer. A datagram side never says it is done: give it a moment.
		other := p.server
		if first.from == event.Server {
			other = p.client
		}
		if !other.stream {
			if cur := time.Duration(p.idle.Load()); cur == 0 || cur > linger {
				p.setIdle(linger)
			}
		}
	}
	second := <-results
	if second.err != nil {
		p.end(second.from, second.err)
	}
	p.end(first.from, nil)
	by, err := p.endBy, p.endErr
	switch {
	case errors.Is(err, errStopped), errors.Is(err, errIdle):
		by, err = event.Relay, nil
	case errors.Is(err, net.ErrClosed):
		err = nil // torn down by the other direction
	}
	if p.hooks != nil {
		p.hooks.close()
	}
	if err != nil {
		p.emit(event.Error, 0, nil, err)
	}
	p.emitClose(by, err)
	p.flush()
	why := "closed by " + by.String()
	if err != nil {
		why += ": " + err.Error()
	}
	if le := (*guard.LimitError)(nil); errors.As(err, &le) {
		log.Notef("conn %d: %v", p.id, err) // a script stopped by its bounds is always said
	}
	log.Debugf("conn %d: %s after %v, %d bytes up, %d bytes down", p.id, why,
		time.Since(p.start).Round(time.Millisecond), p.upBytes.Load(), p.downByte.Load())
}

// copy is the plain path: bytes between the bare connections with nothing
// on the way (copyIdle, which holds nothing while the pair is idle), then a
// half-close so the other side sees the end.
func (p *pair) copy(dst, src net.Conn, from event.Side, n *atomic.Int64, results chan<- result) {
	w, err := copyIdle(dst, src)
	n.Store(w)
	if err == nil {
		link.CloseWrite(dst)
	}
	results <- result{from, err}
}

// setIdle sets the silence after which the pair ends, starting the watch.
func (p *pair) setIdle(d time.Duration) {
	p.idle.Store(int64(d))
	if d > 0 {
		p.watchOnce.Do(func() {
			p.poke = make(chan struct{}, 1)
			go p.watchIdle()
		})
		select {
		case p.poke <- struct{}{}: // a shorter limit than the timer's
		default:
		}
	}
}

func (p *pair) watchIdle() {
	t := time.NewTimer(time.Duration(p.idle.Load()))
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-p.poke:
		case <-t.C:
		}
		idle := time.Duration(p.idle.Load())
		left := idle - time.Since(time.Unix(0, p.last.Load()))
		if left <= 0 {
			p.r.cfg.Log.Debugf("conn %d: nothing moved for %v", p.id, idle)
			p.end(event.Relay, errIdle)
			return
		}
		t.Stop()
		t.Reset(left)
	}
}
