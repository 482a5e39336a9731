package session

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
)

// maxSegment is the most payload one synthesised packet carries: under the
// 65,535-byte window (no scaling is negotiated) and the IP length limit.
const maxSegment = 65000

// Synthetic endpoints for connections without IP addresses (unix sockets,
// host names, a data event with no open): the client is 127.0.0.1 on port
// synthClientPort+conn%16384, the server 127.0.0.2 on the recorded port if
// there is one, else synthServerPort.
const (
	synthClientPort = 49152
	synthServerPort = 40000
)

var (
	clientMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	serverMAC = [6]byte{0x02, 0, 0, 0, 0, 0x02}
)

// ExportPcap writes the session as a pcapng capture with Ethernet framing:
// each connection is a flow between its recorded client and server
// addresses; TCP flows get a handshake, sequence and acknowledgement numbers,
// an ACK for every segment and a FIN exchange on close; UDP messages are
// datagrams. A damaged file is exported up to the damage and its error
// returned.
func ExportPcap(r *Reader, w io.Writer) error {
	h := r.Header()
	ng, err := newNgWriter(w, "wirecat", strings.TrimSpace("wirecat session "+h.Command))
	if err != nil {
		return fmt.Errorf("pcap: %w", err)
	}
	x := &exporter{ng: ng, start: h.Start, flows: map[uint64]*flow{}, framer: r.Framer(), note: r.Note, name: r.Name()}
	var rerr error
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
		if err := x.record(&rec); err != nil {
			return fmt.Errorf("pcap: %w", err)
		}
	}
	if err := ng.Flush(); err != nil {
		return fmt.Errorf("pcap: %w", err)
	}
	return rerr
}

type exporter struct {
	ng     *ngWriter
	start  time.Time
	flows  map[uint64]*flow
	order  []uint64     // ids of flows, oldest first, for the bound
	buf    []byte       // one frame
	framer proto.Framer // makes a message's wire bytes when they were not recorded
	note   func(string)
	name   string
	noted  bool
}

// maxFlows bounds the flows an export keeps at once (a file with opens and
// no closes); past it the oldest is forgotten and its later messages get a
// flow made up anew.
var maxFlows = DefaultMaxOpen

// track adds a new flow, forgetting the oldest when there are too many.
func (x *exporter) track(id uint64, f *flow) {
	if _, ok := x.flows[id]; !ok {
		x.order = append(x.order, id)
	}
	x.flows[id] = f
	for len(x.flows) > maxFlows {
		old := x.order[0]
		x.order = x.order[1:]
		if _, ok := x.flows[old]; !ok {
			continue
		}
		delete(x.flows, old)
		if !x.noted && x.note != nil {
			x.noted = true
			x.note(fmt.Sprintf("%s: more than %d connections open at once; the oldest ones' later packets go in new flows", x.name, maxFlows))
		}
	}
	if len(x.order) > 2*maxFlows {
		kept := x.order[:0:0]
		for _, id := range x.order {
			if _, ok := x.flows[id]; ok {
				kept = append(kept, id)
			}
		}
		x.order = kept
	}
}

// flow is one connection's synthesised state.
type flow struct {
	tcp            bool
	client, server netip.AddrPort
	seq            [2]uint32 // next sequence number: [0] client, [1] server
}

func (x *exporter) record(rec *Record) error {
	ts := x.start.Add(rec.T)
	f := x.flows[rec.Conn]
	switch rec.Kind {
	case event.Open:
		f = newFlow(rec.Conn, rec.Transport, rec.Client, rec.Server)
		x.track(rec.Conn, f)
		return x.handshake(f, ts)
	case event.Data:
		if f == nil { // the open is missing: make the flow up
			f = newFlow(rec.Conn, "", "", "")
			x.track(rec.Conn, f)
			if err := x.handshake(f, ts); err != nil {
				return err
			}
		}
		payload := rec.Data // a datagram is the message
		if f.tcp {
			payload = rec.WireBytes(x.framer) // a stream carries the framing
		}
		return x.data(f, rec.From, payload, ts)
	case event.Close:
		if f == nil {
			return nil
		}
		delete(x.flows, rec.Conn)
		if !f.tcp {
			return nil
		}
		by := rec.From
		if by != event.Server {
			by = event.Client
		}
		return x.fin(f, by, ts, rec.Err)
	}
	return nil
}

func newFlow(conn uint64, transport, client, server string) *flow {
	f := &flow{tcp: transport != "udp" && transport != "unixgram" && transport != "dtls"}
	c, cok := ipPort(client)
	s, sok := ipPort(server)
	if !cok {
		c = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(synthClientPort+conn%16384))
	}
	if !sok {
		port := uint16(synthServerPort)
		if _, p, err := net.SplitHostPort(server); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil && n > 0 {
				port = uint16(n)
			}
		}
		s = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 2}), port)
	}
	if c.Addr().Is4() != s.Addr().Is4() { // one family per flow: map IPv4 into IPv6
		c = netip.AddrPortFrom(netip.AddrFrom16(c.Addr().As16()), c.Port())
		s = netip.AddrPortFrom(netip.AddrFrom16(s.Addr().As16()), s.Port())
	}
	f.client, f.server = c, s
	// Distinct initial sequence numbers per connection, so reused ports
	// still look like new conversations.
	f.seq[0] = uint32(conn)*0x01000193 + 1000
	f.seq[1] = uint32(conn)*0x01000193 + 500000
	return f
}

// ipPort parses host:port with a literal IP; IPv4-mapped addresses become
// IPv4 and zones are dropped.
func ipPort(s string) (netip.AddrPort, bool) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()), true
}

const (
	synF = 1 << iota
	ackF
	pshF
	finF
)

// packet writes one segment or datagram from side (0 client, 1 server).
func (x *exporter) packet(f *flow, side int, flags int, seq, ack uint32, payload []byte, ts time.Time, comment string) error {
	seg := segment{src: f.client, dst: f.server, smac: clientMAC, dmac: serverMAC, tcp: f.tcp,
		flags: tcpFlags(flags), seq: seq, ack: ack, payload: payload}
	if side == 1 {
		seg.src, seg.dst, seg.smac, seg.dmac = seg.dst, seg.src, seg.dmac, seg.smac
	}
	x.buf = appendFrame(x.buf[:0], &seg)
	return x.ng.writePacket(ts, x.buf, comment)
}

// tcpFlags maps the exporter's flag bits to TCP's.
func tcpFlags(flags int) byte {
	var b byte
	for _, m := range [...]struct {
		f int
		t byte
	}{{synF, tcpSYN}, {ackF, tcpACK}, {pshF, tcpPSH}, {finF, tcpFIN}} {
		if flags&m.f != 0 {
			b |= m.t
		}
	}
	return b
}

func (x *exporter) handshake(f *flow, ts time.Time) error {
	if !f.tcp {
		return nil
	}
	c, s := &f.seq[0], &f.seq[1]
	if err := x.packet(f, 0, synF, *c, 0, nil, ts, ""); err != nil {
		return err
	}
	*c++
	if err := x.packet(f, 1, synF|ackF, *s, *c, nil, ts, ""); err != nil {
		return err
	}
	*s++
	return x.packet(f, 0, ackF, *c, *s, nil, ts, "")
}

func (x *exporter) data(f *flow, from event.Side, p []byte, ts time.Time) error {
	side := 0
	if from == event.Server {
		side = 1
	}
	if !f.tcp && len(p) == 0 {
		return x.packet(f, side, 0, 0, 0, nil, ts, "")
	}
	for len(p) > 0 {
		seg := p[:min(len(p), maxSegment)]
		p = p[len(seg):]
		if !f.tcp {
			if err := x.packet(f, side, 0, 0, 0, seg, ts, ""); err != nil {
				return err
			}
			continue
		}
		mine, theirs := &f.seq[side], &f.seq[1-side]
		flags := ackF
		if len(p) == 0 {
			flags |= pshF // PSH ends a message: import joins its segments back
		}
		if err := x.packet(f, side, flags, *mine, *theirs, seg, ts, ""); err != nil {
			return err
		}
		*mine += uint32(len(seg))
		if err := x.packet(f, 1-side, ackF, *theirs, *mine, nil, ts, ""); err != nil {
			return err
		}
	}
	return nil
}

func (x *exporter) fin(f *flow, by event.Side, ts time.Time, errText string) error {
	side := 0
	if by == event.Server {
		side = 1
	}
	comment := ""
	if errText != "" {
		comment = "wirecat: " + errText
	}
	mine, theirs := &f.seq[side], &f.seq[1-side]
	if err := x.packet(f, side, finF|ackF, *mine, *theirs, nil, ts, comment); err != nil {
		return err
	}
	*mine++
	if err := x.packet(f, 1-side, finF|ackF, *theirs, *mine, nil, ts, ""); err != nil {
		return err
	}
	*theirs++
	return x.packet(f, side, ackF, *mine, *theirs, nil, ts, "")
}
