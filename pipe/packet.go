package pipe

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
)

// PacketPeers decides who hears what a datagram listener sends.
type PacketPeers int

const (
	Latest PacketPeers = iota // the most recent sender (listen)
	All                       // every sender seen so far (listen -k)
)

// ServePacket serves a datagram socket: each datagram is tagged with its
// sender, and src goes to the most recent sender or to every known one.
// Input that arrives before any peer has spoken waits for the first one.
// It returns when ctx ends or, with cfg.Idle, after that long without a
// datagram.
func ServePacket(ctx context.Context, pc net.PacketConn, transport string, cfg *Config, src Source, to PacketPeers) error {
	defer pc.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()

	growReadBuffer(pc)
	ps := &packetPeers{known: map[any]*Meta{}, first: make(chan struct{})}
	t := &traffic{}
	t.touch()
	if cfg.Idle > 0 {
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
	buf := make([]byte, 64<<10)
	var err error
	for {
		n, addr, rerr := readDatagram(pc, buf, cfg.Flush)
		if rerr != nil {
			if ctx.Err() == nil {
				err = rerr
			}
			break
		}
		if cfg.Permit != nil && !cfg.Permit(addr) {
			cfg.Log.Debugf("dropped a datagram from %s: not allowed by --allow/--deny", addr)
			continue
		}
		t.touch()
		m, isNew := ps.saw(addr, transport, local, cfg.MaxPeers)
		if m == nil {
			cfg.Log.Debugf("dropped a datagram from %s: --max-conns %d senders reached", addr, cfg.MaxPeers)
			continue
		}
		if isNew {
			cfg.Sink.Emit(m.event(event.Open, 0, nil, nil))
			cfg.Log.Debugf("conn %d: first datagram from %s", m.ID, m.Remote)
		}
		msgs, serr := proto.SplitDatagram(cfg.Framer, buf[:n], cfg.MaxFrame)
		if !cfg.SendOnly {
			ev := m.event(event.Data, event.Client, nil, nil)
			for _, msg := range msgs {
				ev.Data = msg
				cfg.Sink.Emit(ev)
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

type packetPeers struct {
	mu     sync.Mutex
	known  map[any]*Meta // by peerKey
	addrs  []net.Addr
	latest net.Addr
	first  chan struct{}
}

// peerKey identifies a sender without formatting its address, which would
// cost an allocation per datagram: UDP senders by their AddrPort.
func peerKey(a net.Addr) any {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.AddrPort()
	}
	return a.String()
}

// saw records a datagram from addr: its sender's Meta, whether the sender
// is new, and nil when a new sender is one more than max (0: no limit).
func (p *packetPeers) saw(addr net.Addr, transport, local string, max int) (*Meta, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := peerKey(addr)
	m, ok := p.known[key]
	if !ok {
		if max > 0 && len(p.known) >= max {
			return nil, false
		}
		m = &Meta{ID: NextID(), Transport: transport, Local: local, Remote: addr.String(), Role: event.Server}
		p.known[key] = m
		p.addrs = append(p.addrs, addr)
		if p.latest == nil {
			close(p.first)
		}
	}
	p.latest = addr
	return m, !ok
}

func (p *packetPeers) all() []*Meta {
	p.mu.Lock()
	defer p.mu.Unlock()
	ms := make([]*Meta, 0, len(p.known))
	for _, a := range p.addrs {
		ms = append(ms, p.known[peerKey(a)])
	}
	return ms
}

func (p *packetPeers) targets(to PacketPeers) []net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if to == All {
		return append([]net.Addr(nil), p.addrs...)
	}
	return []net.Addr{p.latest}
}

func (p *packetPeers) send(ctx context.Context, pc net.PacketConn, src Source, cfg *Config, t *traffic, to PacketPeers) error {
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
		for _, addr := range p.targets(to) {
			p.mu.Lock()
			m := p.known[peerKey(addr)]
			p.mu.Unlock()
			cfg.Sink.Emit(m.event(event.Data, event.Server, msg.Payload, nil))
			cfg.flush()
			if _, err := pc.WriteTo(msg.Wire, addr); err != nil {
				return fmt.Errorf("send to %s: %w", addr, err)
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
