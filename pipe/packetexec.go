package pipe

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/wirecat-dev/wirecat/diag"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
)

// Limits of --exec on a datagram listener.
const (
	// maxPacketExecs bounds the processes running at once, one per sender:
	// a datagram can come from any address, and each new one must not be
	// able to fork another process for ever. --max-conns, when lower, wins.
	maxPacketExecs = 64
	// execQueue is how many datagrams wait for a process that is slow to
	// read its stdin; past it they are dropped, as the network would.
	execQueue = 64
	// execStopGrace is how long a process has to finish once its sender is
	// gone (its stdin closed) before it is killed.
	execStopGrace = 2 * time.Second
)

// PacketExec runs a command per sender of a datagram listener (listen -u
// --exec): the sender's datagrams go to the command's stdin, and what the
// command writes on stdout goes back to that sender, one datagram per
// message of the framing (per read, without one). It is an event.Sink fed
// by ServePacket: a sender's first datagram starts its command, its Close
// (the listener ends, or --idle forgets it) closes the command's stdin. A
// command that exits is started again by the sender's next datagram.
type PacketExec struct {
	ctx     context.Context
	pc      net.PacketConn
	cfg     *Config
	out     event.Sink // where what the commands send is reported
	command string
	max     int
	log     *diag.Log

	mu      sync.Mutex
	procs   map[uint64]*packetProc
	wg      sync.WaitGroup
	notedAt time.Time // when the bound's notice was last printed
	closed  bool
}

type packetProc struct {
	in   chan []byte   // datagrams for stdin; closed when the sender is gone
	gone chan struct{} // closed with in: the command has execStopGrace left
	done chan struct{}
}

// end tells the command its sender is gone (under x.mu).
func (p *packetProc) end() {
	close(p.in)
	close(p.gone)
}

// NewPacketExec returns the sink that runs command per sender of pc.
// cfg.Sink is where the replies are reported; maxPeers (0: none) lowers
// the bound on processes at once. Call Wait once ServePacket returned.
func NewPacketExec(ctx context.Context, pc net.PacketConn, cfg *Config, command string, maxPeers int) *PacketExec {
	n := maxPacketExecs
	if maxPeers > 0 && maxPeers < n {
		n = maxPeers
	}
	cfg.execPerSender = true // listen -u -k: a silent sender gives its process back (see senderIdle)
	return &PacketExec{ctx: ctx, pc: pc, cfg: cfg, out: cfg.Sink, command: command, max: n, log: cfg.Log,
		procs: map[uint64]*packetProc{}}
}

// Emit starts, feeds and ends the senders' commands.
func (x *PacketExec) Emit(e *event.Event) error {
	switch {
	case e.Kind == event.Data && e.Received():
		x.deliver(e)
	case e.Kind == event.Close:
		x.mu.Lock()
		if p := x.procs[e.Conn]; p != nil {
			delete(x.procs, e.Conn)
			p.end()
		}
		x.mu.Unlock()
	}
	return nil
}

func (x *PacketExec) deliver(e *event.Event) {
	wire, err := x.cfg.Framer.Encode(nil, e.Data) // the message as it came, framing included
	if err != nil {
		x.log.Debugf("conn %d: not passed to --exec: %v", e.Conn, err)
		return
	}
	x.mu.Lock()
	p := x.procs[e.Conn]
	if p != nil {
		select {
		case <-p.done: // it exited: the next datagram starts it anew
			delete(x.procs, e.Conn)
			p.end() // nothing reads p.in any more: release whatever waits on it
			p = nil
		default:
		}
	}
	if p == nil {
		if x.closed {
			x.mu.Unlock()
			return
		}
		if len(x.procs) >= x.max {
			now := time.Now()
			note := now.Sub(x.notedAt) >= boundNoteEvery // once in a while, not per datagram
			if note {
				x.notedAt = now
			}
			x.mu.Unlock()
			if note {
				x.log.Notef("--exec: %d processes running, one per sender: datagrams from new senders are dropped until one ends", x.max)
			}
			return
		}
		m := Meta{ID: e.Conn, Transport: e.Transport, Local: e.Local, Remote: e.Remote, Role: event.Server}
		p = &packetProc{in: make(chan []byte, execQueue), gone: make(chan struct{}), done: make(chan struct{})}
		x.procs[e.Conn] = p
		x.wg.Add(1)
		go x.run(p, m)
	}
	// Under the lock: a Close may otherwise close p.in under the send.
	select {
	case p.in <- wire:
	default:
		x.log.Debugf("conn %d: --exec is not reading: a datagram dropped", e.Conn)
	}
	x.mu.Unlock()
}

// run is one sender's command, from its first datagram until its stdin is
// closed and it exits.
func (x *PacketExec) run(p *packetProc, m Meta) {
	defer x.wg.Done()
	defer close(p.done)
	to, err := netip.ParseAddrPort(m.Remote)
	var addr net.Addr
	if err == nil {
		addr = net.UDPAddrFromAddrPort(to)
	} else {
		addr = &net.UnixAddr{Name: m.Remote, Net: "unixgram"}
	}
	cmd := exec.Command("/bin/sh", "-c", x.command)
	cmd.Env = append(os.Environ(), ExecEnv(nil, m)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err == nil {
		var stdout io.ReadCloser
		if stdout, err = cmd.StdoutPipe(); err == nil {
			if err = cmd.Start(); err == nil {
				x.serve(p, m, addr, cmd, stdin, stdout)
				return
			}
		}
	}
	x.log.Notef("conn %d: exec %q: %v", m.ID, x.command, err)
	for range p.in { // drop what waits until the sender is gone
	}
}

func (x *PacketExec) serve(p *packetProc, m Meta, addr net.Addr, cmd *exec.Cmd, stdin io.WriteCloser, stdout io.Reader) {
	exited := make(chan struct{})
	go func() { // the sender's datagrams to stdin
		defer stdin.Close()
		for {
			select {
			case b, ok := <-p.in:
				if !ok {
					return
				}
				if _, err := stdin.Write(b); err != nil {
					// The command no longer reads (it exited, or closed
					// stdin): what waits in p.in is dropped with p, and
					// nothing here waits on p.in, which deliver may never
					// close once the command exited.
					return
				}
			case <-exited:
				return
			case <-x.ctx.Done():
				return
			}
		}
	}()
	stop := context.AfterFunc(x.ctx, func() { cmd.Process.Kill() })
	defer stop()
	go func() { // once the sender is gone, the command has a moment to finish
		select {
		case <-p.gone:
		case <-exited:
			return
		}
		select {
		case <-time.After(execStopGrace):
			cmd.Process.Kill() // it ignores the end of its stdin, or never read it
		case <-exited:
		}
	}()
	// stdout to the sender, a datagram per message.
	r := proto.NewReader(stdout, x.cfg.Framer, x.cfg.MaxFrame)
	ev := m.event(event.Data, event.Server, nil, nil)
	for {
		msg, err := r.Next()
		if err != nil {
			if err != io.EOF {
				x.log.Notef("conn %d: exec %q: %v", m.ID, x.command, err)
			}
			break
		}
		ev.Time, ev.Data = time.Now(), msg
		x.out.Emit(ev)
		x.cfg.flush()
		wire, err := x.cfg.Framer.Encode(nil, msg)
		if err == nil {
			_, err = x.pc.WriteTo(wire, addr)
		}
		if err != nil {
			x.log.Debugf("conn %d: reply to %s: %v", m.ID, m.Remote, err)
		}
	}
	r.Release()
	// stdout closed: the command is exiting. Give it a moment, then kill.
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-time.After(execStopGrace):
		cmd.Process.Kill()
		err = <-waited
	}
	close(exited)
	if err != nil && x.ctx.Err() == nil {
		x.log.Notef("conn %d: exec %q: %v", m.ID, x.command, err)
	}
}

// Wait ends every command (closing its stdin) and waits for them, each
// given execStopGrace to finish.
func (x *PacketExec) Wait() {
	x.mu.Lock()
	x.closed = true
	for id, p := range x.procs {
		p.end()
		delete(x.procs, id)
	}
	x.mu.Unlock()
	x.wg.Wait()
}
