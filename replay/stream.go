package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/session"
)

// Stream is a recording replayed as it is read (issue 9): what is in
// memory is what is in flight, not the file, so a recording of any size
// starts playing at once and in bounded memory. A client replay reads the
// file once, handing each connection its messages through a bounded
// queue; a server replay gives each accepted peer a reader of its own that
// starts at the recorded connection's first line.
type Stream struct {
	Path   string
	Header session.Header
	first  *Conv // the first connection Select chose (no messages)
	id     uint64
	noOpen bool // a chosen connection has data before its open: Load it instead
}

// MaxLive bounds the connections of a recording a client replay holds at
// once (waiting for their time or a descriptor, or playing). A recording
// with more open at once is refused when it gets there, with what to do.
const MaxLive = 1 << 16

// maxWaiting bounds the bytes of messages held for connections that do
// not play yet: the reader waits for them to start, or, when one is due but
// waits for a descriptor, gives up with what to do.
const maxWaiting = 32 << 20

// readAhead is how far ahead of its time a client replay reads the
// recording: at the recorded speed a recording of many short connections
// would otherwise be read whole long before its connections are due (each
// empty queue takes a message, and the reader waits only on bytes).
const readAhead = time.Second

// OpenStream reads the header of the recording at path.
func OpenStream(path string) (*Stream, error) {
	r, err := session.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return &Stream{Path: path, Header: r.Header()}, nil
}

// scan reads the recording from its start until stop returns true.
func (s *Stream) scan(stop func(*session.Record) bool) error {
	r, err := session.Open(s.Path)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if stop(&rec) {
			return nil
		}
	}
}

// DefaultSide is the side wirecat played when recording, read from the
// connections opened before the first message (a relay recording holds
// both sides: an error that says to choose).
func (s *Stream) DefaultSide() (event.Side, error) {
	roles := map[event.Side]bool{}
	err := s.scan(func(rec *session.Record) bool {
		if rec.Kind == event.Open && rec.Role != 0 {
			roles[rec.Role] = true
		}
		return rec.Kind == event.Data || roles[event.Relay]
	})
	if err != nil {
		return 0, err
	}
	sc := &Script{Name: s.Path}
	for r := range roles {
		sc.Convs = append(sc.Convs, &Conv{Role: r})
	}
	return sc.DefaultSide()
}

// Select chooses the connections to replay as side (only id when id is not
// 0) and checks there is something to replay, reading the recording only
// until side's first message. It returns the first chosen connection
// (addresses, no messages).
func (s *Stream) Select(side event.Side, id uint64) (*Conv, error) {
	s.id = id
	said, seen := false, false
	var some []*Conv // the first few connections, to name them (lo, hi in the last two)
	conns := 0
	var lo, hi uint64
	err := s.scan(func(rec *session.Record) bool {
		if rec.Kind == event.Open {
			if conns == 0 {
				lo, hi = rec.Conn, rec.Conn
			}
			conns++
			lo, hi = min(lo, rec.Conn), max(hi, rec.Conn)
			if len(some) <= 6 {
				some = append(some, &Conv{ID: rec.Conn})
			}
		}
		if id != 0 && rec.Conn != id || rec.Kind != event.Open && rec.Kind != event.Data {
			return false
		}
		seen = true
		if s.first == nil {
			s.first = &Conv{ID: rec.Conn, Open: rec.T}
			if rec.Kind == event.Open {
				s.first.Transport, s.first.Role, s.first.Client, s.first.Server = rec.Transport, rec.Role, rec.Client, rec.Server
			} else {
				s.noOpen = true
			}
		}
		said = rec.Kind == event.Data && rec.From == side
		return said
	})
	switch {
	case err != nil:
		return nil, err
	case !seen && id == 0:
		return nil, fmt.Errorf("%s has no connection: %w", s.Path, ErrNoConn)
	case !seen:
		has := (&Script{Convs: some}).ids()
		if conns > 6 {
			has = fmt.Sprintf("%d connections, %d to %d", conns, lo, hi)
		}
		return nil, fmt.Errorf("%s has no connection %d (it has %s): %w", s.Path, id, has, ErrNoConn)
	case !said:
		which := "any connection"
		if id != 0 {
			which = fmt.Sprintf("connection %d", id)
		}
		return nil, fmt.Errorf("%s: the %s sent nothing in %s: %w as %s (try --as %s)",
			s.Path, side, which, ErrNoConn, side, side.Other())
	}
	return s.first, nil
}

// RunStream replays s (after Select) as cfg.As, like Run.
func RunStream(ctx context.Context, s *Stream, cfg *Config) error {
	cfg.defaults()
	if s.first == nil {
		return fmt.Errorf("%s: nothing selected: %w", s.Path, ErrNoConn)
	}
	if s.noOpen {
		// A recording whose connections lack their open (written by hand):
		// read it whole, as Load does.
		r, err := session.Open(s.Path)
		if err != nil {
			return err
		}
		sc, err := Load(r)
		r.Close()
		if err != nil {
			return err
		}
		convs, err := sc.Select(cfg.As, s.id)
		if err != nil {
			return err
		}
		return Run(ctx, convs, cfg)
	}
	switch cfg.As {
	case event.Client:
		return streamClients(ctx, s, cfg)
	case event.Server:
		addr, err := listenAddr([]*Conv{s.first}, cfg)
		if err != nil {
			return err
		}
		rot := &streamRotation{s: s, cfg: cfg, pool: newFeedPool()}
		defer rot.close()
		return runServer(ctx, addr, rot, cfg)
	}
	return fmt.Errorf("replay as %v: want client or server", cfg.As)
}

// liveConv is a recorded connection of a client replay, from its first
// record to its close.
type liveConv struct {
	c    *Conv
	feed *queueFeed // pending until the connection plays
}

// streamClients reads the recording once: each connection starts at its
// recorded offset and gets its messages through a queue as the reader
// reaches them.
func streamClients(ctx context.Context, s *Stream, cfg *Config) error {
	r, err := session.Open(s.Path)
	if err != nil {
		return err
	}
	defer r.Close()
	g := newGroup(ctx)
	pool := newFeedPool()
	st := newStarter(g, cfg, pool)
	live := map[uint64]*liveConv{}
	start := time.Now()
	var base time.Duration
	based := false
	end := func(lc *liveConv, err error) {
		lc.feed.end(err)
		delete(live, lc.c.ID)
	}
	var rerr error
read:
	for g.ctx.Err() == nil {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
		if s.id != 0 && rec.Conn != s.id {
			continue
		}
		if based && cfg.Speed > 0 {
			// Read no further than readAhead before the record is due.
			if sleepUntil(g.ctx, start.Add(cfg.scale(rec.T-base)-readAhead), cfg) != nil {
				break
			}
		}
		lc := live[rec.Conn]
		if rec.Kind == event.Open && lc != nil {
			end(lc, nil) // an id used again: a new connection
			lc = nil
		}
		if lc == nil && (rec.Kind == event.Open || rec.Kind == event.Data) {
			if len(live) >= MaxLive {
				_, line := r.Offset()
				rerr = fmt.Errorf("%s:%d: more than %d connections open at once: replay part of the recording with --conn N", s.Path, line, MaxLive)
				break
			}
			if !based {
				base, based = rec.T, true
			}
			c := &Conv{ID: rec.Conn, Open: rec.T}
			if rec.Kind == event.Open {
				c.Transport, c.Role, c.Client, c.Server = rec.Transport, rec.Role, rec.Client, rec.Server
			}
			addr, err := target(c, cfg)
			if err != nil {
				rerr = err
				break
			}
			lc = &liveConv{c: c, feed: pool.newPendingFeed()}
			live[rec.Conn] = lc
			st.add(lc, addr, start.Add(cfg.scale(rec.T-base)))
		}
		switch rec.Kind {
		case event.Data:
			if lc == nil {
				continue
			}
			if !lc.feed.put(msgOf(r, &rec)) {
				continue // the player is gone
			}
			if !pool.admit(g.ctx, maxWaiting) {
				_, line := r.Offset()
				rerr = fmt.Errorf("%s:%d: more connections are open at once than descriptors allow (%s), and the messages of those waiting passed %d MiB: %w",
					s.Path, line, nofileText(), maxWaiting>>20, errRaiseLimit)
				break read
			}
		case event.Close:
			if lc != nil {
				lc.c.Closed, lc.c.CloseT, lc.c.CloseBy = true, rec.T, rec.From
				lc.c.CloseCode, lc.c.CloseReason = rec.Code, rec.Reason
				end(lc, nil)
			}
		}
	}
	for _, lc := range live {
		end(lc, rerr)
	}
	st.close()
	if rerr != nil {
		g.fail(rerr)
	}
	err = g.wait()
	if ctx.Err() != nil && !isDifference(err) {
		return nil
	}
	return err
}

var errRaiseLimit = errors.New("raise the descriptor limit (ulimit -n) or replay part of the recording with --conn N")

// starter starts the connections of a client replay in recorded order,
// each at its time and when a descriptor is free: connections past the
// descriptor limit wait (queue) for one to close rather than fail.
type starter struct {
	g      *group
	cfg    *Config
	pool   *feedPool // told when a due connection waits for a descriptor
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []startItem
	closed bool
	slots  chan struct{}
	done   chan struct{}
}

type startItem struct {
	lc   *liveConv
	addr link.Addr
	at   time.Time
}

func newStarter(g *group, cfg *Config, pool *feedPool) *starter {
	st := &starter{g: g, cfg: cfg, pool: pool, slots: make(chan struct{}, descriptorBudget()), done: make(chan struct{})}
	st.cond = sync.NewCond(&st.mu)
	go st.run()
	return st
}

func (st *starter) add(lc *liveConv, addr link.Addr, at time.Time) {
	st.mu.Lock()
	st.queue = append(st.queue, startItem{lc, addr, at})
	st.cond.Signal()
	st.mu.Unlock()
}

// close says no more connections will come and waits for the starter.
func (st *starter) close() {
	st.mu.Lock()
	st.closed = true
	st.cond.Signal()
	st.mu.Unlock()
	<-st.done
}

func (st *starter) run() {
	defer close(st.done)
	noted := false
	for {
		st.mu.Lock()
		for len(st.queue) == 0 && !st.closed {
			st.cond.Wait()
		}
		if len(st.queue) == 0 {
			st.mu.Unlock()
			return
		}
		it := st.queue[0]
		st.queue[0] = startItem{}
		st.queue = st.queue[1:]
		st.mu.Unlock()
		lc := it.lc
		if sleepUntil(st.g.ctx, it.at, st.cfg) != nil {
			lc.feed.stop()
			continue
		}
		select {
		case st.slots <- struct{}{}:
		default:
			if !noted {
				noted = true
				st.cfg.Log.Notef("replay: %d connections are open, as many as descriptors allow (%s); the next ones wait for one to close, later than recorded (raise the limit with ulimit -n to keep the recorded times)",
					cap(st.slots), nofileText())
			}
			st.pool.setStarved(true)
			select {
			case st.slots <- struct{}{}:
			case <-st.g.ctx.Done():
				st.pool.setStarved(false)
				lc.feed.stop()
				continue
			}
			st.pool.setStarved(false)
		}
		lc.feed.play()
		at := it.at
		if now := time.Now(); now.After(at) {
			at = now
		}
		st.g.wg.Add(1)
		go func() {
			defer st.g.wg.Done()
			defer func() { <-st.slots }()
			defer lc.feed.stop()
			if err := playClient(st.g.ctx, lc.c, lc.feed, it.addr, at, st.cfg); err != nil {
				st.g.fail(err)
			}
		}()
	}
}

// streamRotation hands each peer of a server replay the next recorded
// connection, read by a reader of its own from the connection's open.
type streamRotation struct {
	s    *Stream
	cfg  *Config
	pool *feedPool
	mu   sync.Mutex
	r    *session.Reader // finds the next open; reopened at the end: round again
}

func (rot *streamRotation) close() {
	rot.mu.Lock()
	defer rot.mu.Unlock()
	if rot.r != nil {
		rot.r.Close()
	}
}

func (rot *streamRotation) next(ctx context.Context) (*Conv, feed, error) {
	rot.mu.Lock()
	defer rot.mu.Unlock()
	for pass := 0; pass < 2; pass++ {
		if rot.r == nil {
			r, err := session.Open(rot.s.Path)
			if err != nil {
				return nil, nil, err
			}
			rot.r = r
		}
		for {
			rec, err := rot.r.Next()
			if err == io.EOF {
				rot.r.Close()
				rot.r = nil
				break
			}
			if err != nil {
				return nil, nil, err
			}
			if rec.Kind != event.Open || rot.s.id != 0 && rec.Conn != rot.s.id {
				continue
			}
			c := &Conv{ID: rec.Conn, Open: rec.T, Transport: rec.Transport, Role: rec.Role, Client: rec.Client, Server: rec.Server}
			off, line := rot.r.Offset()
			f := rot.pool.newFeed(feedLimit)
			go readConv(ctx, rot.s.Path, off, line, c, f)
			return c, f, nil
		}
	}
	return nil, nil, fmt.Errorf("%s: no connection to replay: %w", rot.s.Path, ErrNoConn)
}

// goneEvery is how many records readConv reads between two looks at
// whether its peer is gone: most records are other connections', and a
// connection never closed in the recording would otherwise be read for to
// the end of the file after its peer left, or after a signal.
const goneEvery = 256

// readConv feeds f with the messages of c, reading the recording from c's
// open at off until c's close (or another connection with its id), the end
// of ctx, or its player leaving. It returns how many records it read.
func readConv(ctx context.Context, path string, off int64, line int, c *Conv, f *queueFeed) int {
	r, err := session.OpenAt(path, off, line)
	if err != nil {
		f.end(err)
		return 0
	}
	defer r.Close()
	if _, err := r.Next(); err != nil { // the open itself
		f.end(err)
		return 0
	}
	for n := 1; ; n++ {
		if n%goneEvery == 0 && (ctx.Err() != nil || f.gone()) {
			f.end(ctx.Err())
			return n
		}
		rec, err := r.Next()
		if err == io.EOF {
			f.end(nil)
			return n
		}
		if err != nil {
			f.end(err)
			return n
		}
		if rec.Conn != c.ID {
			continue
		}
		switch rec.Kind {
		case event.Open:
			f.end(nil)
			return n
		case event.Data:
			if !f.put(msgOf(r, &rec)) {
				return n // the peer is gone
			}
		case event.Close:
			c.Closed, c.CloseT, c.CloseBy = true, rec.T, rec.From
			c.CloseCode, c.CloseReason = rec.Code, rec.Reason
			f.end(nil)
			return n
		}
	}
}
