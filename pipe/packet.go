package pipe

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
)

// PacketPeers decides who hears what a datagram listener sends.
type PacketPeers int

const (
	Latest PacketPeers = iota // the most recent sender (listen)
	All                       // every sender seen so far (listen -k)
)

// Limits of the sender table.
const (
	// maxSenders bounds the senders a datagram listener remembers: a few
	// hundred bytes each, so thousands of sensors fit in a few MiB, while a
	// flood from ever-new addresses (or ports) cannot grow memory without
	// end. Past it the least recently heard sender is forgotten.
	maxSenders = 16384
	// defaultPeerIdle forgets a sender of listen -u -k --max-conns (or
	// --exec, whose processes are bounded by maxPacketExecs) silent
	// this long when --idle is not given: a datagram peer never says it is
	// done, and without it the first N senders would hold every place for
	// good. Relay's datagram sessions use the same minute.
	defaultPeerIdle = 60 * time.Second
	// boundNoteEvery rate-limits the notice that --max-conns drops new
	// senders: a flood of them says so once in a while, not per datagram.
	boundNoteEvery = 10 * time.Second
)

// senderIdle is how long a silent sender of a listener for every sender
// stays known (0: for ever, and for Latest, which has no per-sender expiry):
// --idle, or defaultPeerIdle when senders hold places that new ones may
// need (--max-conns, or a process each with --exec).
func senderIdle(cfg *Config, to PacketPeers) time.Duration {
	if to != All {
		return 0
	}
	if cfg.Idle == 0 && (cfg.MaxPeers > 0 || cfg.execPerSender) {
		return defaultPeerIdle
	}
	return cfg.Idle
}

// ServePacket serves a datagram socket: each datagram is tagged with its
// sender, and src goes to the most recent sender or to every known one.
// Input that arrives before any peer has spoken waits for the first one.
// It returns when ctx ends. With cfg.Idle, a listener for the latest sender
// ends after that long without a datagram, while one for All forgets each
// sender silent that long (a Close event): senders are peers, and
// cfg.MaxPeers counts the ones heard from within that time. The table of
// senders is bounded (maxSenders): past it the least recently heard one is
// forgotten.
func ServePacket(ctx context.Context, pc net.PacketConn, transport string, cfg *Config, src Source, to PacketPeers) error {
	defer pc.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()

	growReadBuffer(pc)
	ps := newPacketPeers(maxSenders)
	t := &traffic{}
	t.touch()
	peerIdle := senderIdle(cfg, to) // how long a silent sender stays known; 0: for ever
	if peerIdle > 0 {
		go ps.expire(ctx, peerIdle, cfg)
	} else if to != All && cfg.Idle > 0 {
		go t.watchIdle(ctx, cfg.Idle, cancel)
	}
	var sendErr error // set before cancel, read after ctx is done
	if src != nil {
		go func() {
			if err := ps.send(ctx, pc, src, cfg, t, to); err != nil {
				sendErr = err
				cancel(err)
			}
		}()
	}

	local := pc.LocalAddr().String()
	dgrams := newDatagramSource(pc, cfg.Flush)
	raw := proto.IsRaw(cfg.Framer)
	var ev event.Event // reused: the sink does not keep events
	fullNoted := false
	var fullAt time.Time // when --max-conns refusals were last reported
	var err error
	for {
		data, ap, addr, rerr := dgrams.next()
		if rerr != nil {
			if ctx.Err() == nil {
				err = rerr
			}
			break
		}
		// One clock read per datagram: the idle watch, the sender table
		// and the event share it.
		now := time.Now()
		t.last.Store(now.UnixNano())
		m := ps.heard(ap, addr, now)
		if m == nil {
			if addr == nil {
				addr = net.UDPAddrFromAddrPort(ap)
			}
			if cfg.Permit != nil && !cfg.Permit(addr) {
				cfg.Log.Debugf("dropped a datagram from %s: not allowed by --allow/--deny", addr)
				continue
			}
			var gone *Meta
			m, gone = ps.add(ap, addr, now, transport, local, cfg.MaxPeers)
			if m == nil {
				if now.Sub(fullAt) >= boundNoteEvery {
					fullAt = now
					why := "until the listener ends"
					if peerIdle > 0 {
						why = fmt.Sprintf("until one is silent for %v", peerIdle)
					}
					cfg.Log.Notef("--max-conns %d senders reached: datagrams from new senders are dropped %s", cfg.MaxPeers, why)
				}
				cfg.Log.Debugf("dropped a datagram from %s: --max-conns %d senders reached", addr, cfg.MaxPeers)
				continue
			}
			if gone != nil {
				if !fullNoted {
					cfg.Log.Notef("%d senders at once: forgetting the least recently heard ones (the most wirecat remembers)", maxSenders)
					fullNoted = true
				}
				cfg.Log.Debugf("conn %d: %s forgotten: %d senders heard since", gone.ID, gone.Remote, maxSenders)
				cfg.Sink.Emit(gone.event(event.Close, event.Server, nil, nil))
			}
			cfg.Sink.Emit(m.event(event.Open, 0, nil, nil))
			cfg.Log.Debugf("conn %d: first datagram from %s", m.ID, m.Remote)
		}
		var msgs [][]byte
		var serr error
		if !raw || len(data) > cfg.MaxFrame {
			msgs, serr = proto.SplitDatagram(cfg.Framer, data, cfg.MaxFrame)
		}
		if !cfg.SendOnly {
			ev = event.Event{Kind: event.Data, Time: now, Conn: m.ID, Transport: m.Transport,
				Local: m.Local, Remote: m.Remote, Role: m.Role, From: event.Client}
			if raw && serr == nil && msgs == nil {
				ev.Data = data // the whole datagram, without a slice per datagram
				cfg.Sink.Emit(&ev)
			}
			for _, msg := range msgs {
				ev.Data = msg
				cfg.Sink.Emit(&ev)
			}
		}
		if serr != nil {
			cfg.Sink.Emit(m.event(event.Error, 0, nil, fmt.Errorf("datagram from %s: %w", m.Remote, serr)))
		}
	}
	if ctx.Err() != nil {
		err = sendErr // the input failed; idle and Ctrl-C are normal ends
		cfg.Log.Debugf("%v", context.Cause(ctx))
	}
	for _, m := range ps.all() {
		cfg.Sink.Emit(m.event(event.Close, event.Server, nil, nil))
	}
	cfg.flush()
	return err
}

// sender is one peer of a datagram listener, in the table's list from the
// most to the least recently heard.
type sender struct {
	meta       *Meta
	addr       net.Addr
	ap         netip.AddrPort // the key of a UDP sender
	name       string         // the key of another (unixgram)
	last       int64          // unix nanoseconds of its latest datagram
	prev, next *sender
}

// packetPeers is the table of senders: maps to find one by address (UDP
// senders by AddrPort, which costs no allocation per datagram; others by
// name) and a list by recency, to forget the least recently heard in O(1).
type packetPeers struct {
	mu     sync.Mutex
	udp    map[netip.AddrPort]*sender
	named  map[string]*sender
	head   *sender // most recently heard
	tail   *sender // least recently heard
	max    int
	latest *sender
	first  chan struct{} // closed when the first sender speaks
	spoke  bool
	closed bool // after all(): the listener is done
}

func newPacketPeers(max int) *packetPeers {
	return &packetPeers{udp: map[netip.AddrPort]*sender{}, named: map[string]*sender{}, max: max, first: make(chan struct{})}
}

func (p *packetPeers) len() int { return len(p.udp) + len(p.named) }

func (p *packetPeers) find(ap netip.AddrPort, addr net.Addr) *sender {
	if ap.IsValid() {
		return p.udp[ap]
	}
	return p.named[addr.String()]
}

func (p *packetPeers) forget(s *sender) {
	p.unlink(s)
	if s.ap.IsValid() {
		delete(p.udp, s.ap)
	} else {
		delete(p.named, s.name)
	}
}

func (p *packetPeers) unlink(s *sender) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		p.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		p.tail = s.prev
	}
	s.prev, s.next = nil, nil
}

func (p *packetPeers) pushFront(s *sender) {
	s.next = p.head
	if p.head != nil {
		p.head.prev = s
	}
	p.head = s
	if p.tail == nil {
		p.tail = s
	}
}

// heard records a datagram from a known sender (ap when valid, else addr)
// and returns its Meta; nil for a sender not in the table.
func (p *packetPeers) heard(ap netip.AddrPort, addr net.Addr, now time.Time) *Meta {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.find(ap, addr)
	if s == nil {
		return nil
	}
	s.last = now.UnixNano()
	if p.head != s {
		p.unlink(s)
		p.pushFront(s)
	}
	p.latest = s
	return s.meta
}

// add records a new sender: nil when it is one more than max (0: no
// limit); one beyond the table's size pushes out the least recently heard,
// returned as gone. addr is the sender's address, ap its key if UDP.
func (p *packetPeers) add(ap netip.AddrPort, addr net.Addr, now time.Time, transport, local string, max int) (m, gone *Meta) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if max > 0 && p.len() >= max {
		return nil, nil
	}
	if p.len() >= p.max {
		old := p.tail
		p.forget(old)
		gone = old.meta
	}
	s := &sender{
		meta: &Meta{ID: NextID(), Transport: transport, Local: local, Remote: addr.String(), Role: event.Server},
		addr: addr, ap: ap, last: now.UnixNano(),
	}
	if ap.IsValid() {
		p.udp[ap] = s
	} else {
		s.name = s.meta.Remote
		p.named[s.name] = s
	}
	p.pushFront(s)
	if !p.spoke {
		p.spoke = true
		close(p.first)
	}
	p.latest = s
	return s.meta, gone
}

// saw is heard, then add for a new sender; isNew says which.
func (p *packetPeers) saw(addr net.Addr, transport, local string, max int) (m *Meta, isNew bool, gone *Meta) {
	var ap netip.AddrPort
	if u, ok := addr.(*net.UDPAddr); ok {
		ap = u.AddrPort()
	}
	now := time.Now()
	if m := p.heard(ap, addr, now); m != nil {
		return m, false, nil
	}
	m, gone = p.add(ap, addr, now, transport, local, max)
	return m, m != nil, gone
}

// expire forgets, until ctx ends, each sender silent for idle, reporting
// its Close.
func (p *packetPeers) expire(ctx context.Context, idle time.Duration, cfg *Config) {
	every := min(max(idle/4, 10*time.Millisecond), time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cutoff := time.Now().Add(-idle).UnixNano()
		var gone []*Meta
		p.mu.Lock()
		for !p.closed && p.tail != nil && p.tail.last < cutoff {
			s := p.tail
			if s == p.latest {
				p.latest = nil
			}
			p.forget(s)
			gone = append(gone, s.meta)
		}
		p.mu.Unlock()
		for _, m := range gone {
			cfg.Log.Debugf("conn %d: %s silent for %v: forgotten", m.ID, m.Remote, idle)
			cfg.Sink.Emit(m.event(event.Close, event.Server, nil, nil))
		}
		if len(gone) > 0 {
			cfg.flush()
		}
	}
}

// all returns the senders still known, from the least recently heard, and
// closes the table: the listener is done.
func (p *packetPeers) all() []*Meta {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	ms := make([]*Meta, 0, p.len())
	for s := p.tail; s != nil; s = s.prev {
		ms = append(ms, s.meta)
	}
	return ms
}

// target is a sender to send to.
type target struct {
	meta *Meta
	addr net.Addr
}

// targets returns who hears the next message: the latest sender, or every
// known one.
func (p *packetPeers) targets(to PacketPeers, into []target) []target {
	p.mu.Lock()
	defer p.mu.Unlock()
	into = into[:0]
	if to == All {
		for s := p.tail; s != nil; s = s.prev {
			into = append(into, target{s.meta, s.addr})
		}
		return into
	}
	if p.latest != nil {
		into = append(into, target{p.latest.meta, p.latest.addr})
	}
	return into
}

func (p *packetPeers) send(ctx context.Context, pc net.PacketConn, src Source, cfg *Config, t *traffic, to PacketPeers) error {
	var ts []target
	for {
		msg, err := src.Next()
		if err == io.EOF {
			return nil // the input ended: keep receiving
		}
		if err != nil {
			return err
		}
		select {
		case <-p.first:
		case <-ctx.Done():
			return nil
		}
		ts = p.targets(to, ts)
		for _, tg := range ts {
			cfg.Sink.Emit(tg.meta.event(event.Data, event.Server, msg.Payload, nil))
			cfg.flush()
			if _, err := pc.WriteTo(msg.Wire, tg.addr); err != nil {
				return fmt.Errorf("send to %s: %w", tg.addr, err)
			}
		}
		t.touch()
	}
}

// growReadBuffer asks the kernel for room to queue a burst of datagrams
// while wirecat writes out the last one: the default drops at full rate.
func growReadBuffer(c any) {
	if rb, ok := c.(interface{ SetReadBuffer(int) error }); ok {
		rb.SetReadBuffer(4 << 20) // the kernel caps it at net.core.rmem_max
	}
}
