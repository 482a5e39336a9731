package replay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirecat-dev/wirecat/diag"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/proto"
)

// Config says how to replay.
type Config struct {
	As       event.Side    // the side to play: event.Client or event.Server
	Addr     *link.Addr    // client: connect here; server: listen here (nil: the recorded server address)
	Link     *link.Options // transport and TLS options
	Framer   proto.Framer  // re-encodes recorded payloads and cuts what arrives (nil: raw)
	MaxFrame int
	Speed    float64       // 1 keeps the recorded timing, 2 halves it; 0 sends as fast as possible
	Check    bool          // compare what arrives with the recording; the first difference ends the replay
	Timeout  time.Duration // how long to wait for each expected message (default 5s)
	Quiet    time.Duration // raw streams without Check: a pause this long ends the peer's turn (default 250ms)
	Once     bool          // server: stop after one connection
	Exact    bool          // send a message's recorded wire bytes when the recording has them (Framer is the recorded framing)
	Sink     event.Sink    // every event of the replayed connections
	Flush    func() error  // called before every wait, so output and recording are on disk
	Log      *diag.Log
	// Listening, when set, is told the server's address once it listens.
	Listening func(net.Addr)
}

const (
	defaultTimeout = 5 * time.Second
	defaultQuiet   = 250 * time.Millisecond
	// closeGrace is how long a side that closes first waits for the peer's
	// close, so unread data does not turn into a reset.
	closeGrace = time.Second
)

func (cfg *Config) defaults() {
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = defaultQuiet
	}
	if cfg.Sink == nil {
		cfg.Sink = event.Discard
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = proto.DefaultMaxFrame
	}
}

func (cfg *Config) flush() {
	if cfg.Flush != nil {
		cfg.Flush()
	}
}

// scale turns a recorded interval into a replayed one.
func (cfg *Config) scale(d time.Duration) time.Duration {
	if cfg.Speed <= 0 {
		return 0
	}
	return time.Duration(float64(d) / cfg.Speed)
}

var lastID atomic.Uint64

// Run replays convs (from s.Select) as cfg.As until they are done, ctx
// ends, or (with Check) the first difference, returned as a *Difference.
func Run(ctx context.Context, convs []*Conv, cfg *Config) error {
	cfg.defaults()
	if len(convs) == 0 {
		return ErrNoConn
	}
	switch cfg.As {
	case event.Client:
		return runClients(ctx, convs, cfg)
	case event.Server:
		addr, err := listenAddr(convs, cfg)
		if err != nil {
			return err
		}
		return runServer(ctx, addr, &sliceRotation{convs: convs}, cfg)
	}
	return fmt.Errorf("replay as %v: want client or server", cfg.As)
}

// group runs conversations concurrently; the first difference or failure
// stops the others.
type group struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
}

func newGroup(ctx context.Context) *group {
	g := &group{}
	g.ctx, g.cancel = context.WithCancelCause(ctx)
	return g
}

func (g *group) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var d *Difference
	if g.err == nil || (errors.As(err, &d) && !errors.As(g.err, &d)) {
		g.err = err
	}
	g.cancel(err)
}

func (g *group) wait() error {
	g.wg.Wait()
	g.cancel(nil)
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// target is where a client replay of c connects.
func target(c *Conv, cfg *Config) (link.Addr, error) {
	if cfg.Addr != nil {
		return *cfg.Addr, nil
	}
	if c.Server == "" {
		return link.Addr{}, fmt.Errorf("connection %d has no recorded server address: give one with --to", c.ID)
	}
	tr := c.Transport
	if tr == "" {
		tr = "tcp"
	}
	a, err := link.Parse(tr+"://"+c.Server, false)
	if err != nil {
		return a, fmt.Errorf("connection %d: recorded server %w", c.ID, err)
	}
	return a, nil
}

// runClients opens every connection at its recorded offset from the first.
func runClients(ctx context.Context, convs []*Conv, cfg *Config) error {
	g := newGroup(ctx)
	start := time.Now()
	first := convs[0].Open
	for _, c := range convs {
		first = min(first, c.Open)
	}
	for _, c := range convs {
		addr, err := target(c, cfg)
		if err != nil {
			return err
		}
		at := start.Add(cfg.scale(c.Open - first))
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if sleepUntil(g.ctx, at, cfg) != nil {
				return
			}
			if err := playClient(g.ctx, c, nil, addr, at, cfg); err != nil {
				g.fail(err)
			}
		}()
	}
	err := g.wait()
	if ctx.Err() != nil && !isDifference(err) {
		return nil // interrupted: the user's choice
	}
	return err
}

func playClient(ctx context.Context, c *Conv, f feed, addr link.Addr, at time.Time, cfg *Config) error {
	conn, err := link.Dial(ctx, addr, cfg.Link)
	if err != nil {
		return err
	}
	defer conn.Close() // its descriptor goes back at once, not when collected
	p := newPlayer(c, f, cfg, at, event.Event{
		Conn: lastID.Add(1), Transport: addr.Transport(), Local: conn.LocalAddr().String(),
		Remote: conn.RemoteAddr().String(), Role: event.Client,
	}, conn)
	w := &netWire{c: conn, datagram: addr.Datagram()}
	in := make(chan item, 64)
	done := make(chan struct{})
	defer close(done)
	go w.read(cfg, p.other(), in, done)
	return p.play(ctx, w, in)
}

// rotation hands out the recorded conversation each new peer of a server
// replay plays: the first recorded to the first peer, and so on, round
// again. f nil means c.Msgs.
type rotation interface {
	next(ctx context.Context) (c *Conv, f feed, err error)
}

// sliceRotation is a rotation over conversations in memory.
type sliceRotation struct {
	convs []*Conv
	n     int
}

func (r *sliceRotation) next(context.Context) (*Conv, feed, error) {
	c := r.convs[r.n%len(r.convs)]
	r.n++
	return c, nil, nil
}

// runServer accepts connections on addr and plays the conversations rot
// hands out.
func runServer(ctx context.Context, addr link.Addr, rot rotation, cfg *Config) error {
	if addr.Packet() {
		return servePacket(ctx, addr, rot, cfg)
	}
	ln, err := link.Listen(ctx, addr, cfg.Link)
	if err != nil {
		return err
	}
	defer ln.Close()
	if cfg.Listening != nil {
		cfg.Listening(ln.Addr())
	}
	g := newGroup(ctx)
	stop := context.AfterFunc(g.ctx, func() { ln.Close() })
	defer stop()
	for n := 0; ; n++ {
		conn, err := ln.Accept()
		if err != nil {
			if g.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			g.fail(err)
			break
		}
		if cfg.Once {
			ln.Close()
		}
		c, f, err := rot.next(g.ctx)
		if err != nil {
			conn.Close()
			g.fail(err)
			break
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := serveConn(g.ctx, conn, c, f, addr, cfg); err != nil {
				if isDifference(err) || cfg.Once {
					g.fail(err)
					return
				}
				if g.ctx.Err() == nil { // a signal's cancellation is no news
					cfg.Log.Notef("conn %s: %v", conn.RemoteAddr(), err)
				}
			}
		}()
		if cfg.Once {
			break
		}
	}
	err = g.wait()
	if ctx.Err() != nil && !isDifference(err) {
		return nil
	}
	return err
}

func serveConn(ctx context.Context, conn net.Conn, c *Conv, f feed, addr link.Addr, cfg *Config) error {
	defer conn.Close()
	if s, ok := f.(interface{ stop() }); ok {
		defer s.stop()
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := link.Handshake(hctx, conn)
	cancel()
	if err != nil {
		return err
	}
	p := newPlayer(c, f, cfg, time.Now(), event.Event{
		Conn: lastID.Add(1), Transport: addr.Transport(), Local: conn.LocalAddr().String(),
		Remote: conn.RemoteAddr().String(), Role: event.Server,
	}, conn)
	cfg.Log.Debugf("conn %d: %s plays recorded connection %d", p.ev.Conn, p.ev.Remote, c.ID)
	w := &netWire{c: conn}
	in := make(chan item, 64)
	done := make(chan struct{})
	defer close(done)
	go w.read(cfg, p.other(), in, done)
	return p.play(ctx, w, in)
}

// listenAddr is where a server replay listens.
func listenAddr(convs []*Conv, cfg *Config) (link.Addr, error) {
	if cfg.Addr != nil {
		return *cfg.Addr, nil
	}
	for _, c := range convs {
		if c.Server != "" {
			return target(c, cfg)
		}
	}
	return link.Addr{}, errors.New("the recording has no server address to listen on: give one with --listen")
}

// servePacket demultiplexes datagrams by sender: each new sender is a
// connection playing the next recorded conversation.
func servePacket(ctx context.Context, addr link.Addr, rot rotation, cfg *Config) error {
	pc, err := link.ListenPacket(ctx, addr, cfg.Link)
	if err != nil {
		return err
	}
	defer pc.Close()
	if cfg.Listening != nil {
		cfg.Listening(pc.LocalAddr())
	}
	g := newGroup(ctx)
	stop := context.AfterFunc(g.ctx, func() { pc.Close() })
	defer stop()
	var (
		mu    sync.Mutex
		peers = map[string]chan item{}
		n     int
	)
	buf := make([]byte, 64<<10)
	for {
		cfg.flush()
		size, from, err := pc.ReadFrom(buf)
		if err != nil {
			if g.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				g.fail(err)
			}
			break
		}
		at := time.Now()
		key := from.String()
		mu.Lock()
		in, ok := peers[key]
		if !ok && (!cfg.Once || n == 0) {
			c, f, err := rot.next(g.ctx)
			if err != nil {
				mu.Unlock()
				g.fail(err)
				break
			}
			in = make(chan item, 256)
			peers[key] = in
			n++
			p := newPlayer(c, f, cfg, at, event.Event{
				Conn: lastID.Add(1), Transport: addr.Transport(), Local: pc.LocalAddr().String(),
				Remote: key, Role: event.Server,
			}, nil)
			g.wg.Add(1)
			go func() {
				defer g.wg.Done()
				if s, ok := f.(interface{ stop() }); ok {
					defer s.stop()
				}
				err := p.play(g.ctx, &packetWire{pc: pc, to: from}, in)
				mu.Lock()
				delete(peers, key)
				mu.Unlock()
				switch {
				case err != nil && (isDifference(err) || cfg.Once):
					g.fail(err)
				case err != nil && g.ctx.Err() == nil:
					cfg.Log.Notef("conn %s: %v", key, err)
				case cfg.Once:
					g.cancel(nil)
				}
			}()
		}
		mu.Unlock()
		if in == nil {
			continue // --once: only the first sender is served
		}
		msgs, serr := proto.SplitDatagram(cfg.Framer, buf[:size], cfg.MaxFrame)
		for _, m := range msgs {
			select {
			case in <- item{data: append([]byte(nil), m...), at: at}:
			default:
				cfg.Log.Warnf("conn %s: datagram dropped: the replay is not keeping up", key)
			}
		}
		if serr != nil {
			cfg.Log.Notef("datagram from %s: %v", key, serr)
		}
	}
	err = g.wait()
	if ctx.Err() != nil && !isDifference(err) {
		return nil
	}
	return err
}

func isDifference(err error) bool {
	var d *Difference
	return errors.As(err, &d)
}

// sleepUntil waits for t on the monotonic clock. Timers can fire late by
// the scheduler's slack, so the last stretch is spent yielding, which
// keeps replayed gaps within a fraction of a millisecond of the recording.
func sleepUntil(ctx context.Context, t time.Time, cfg *Config) error {
	if time.Until(t) > 0 {
		cfg.flush()
	}
	for {
		d := time.Until(t)
		if d <= 0 {
			return ctx.Err()
		}
		if d > spinFor {
			timer := time.NewTimer(d - spinFor)
			select {
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			case <-timer.C:
			}
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		yield()
	}
}

// spinFor is how close to a deadline sleepUntil stops trusting timers.
const spinFor = 2 * time.Millisecond
