package capture

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
)

// Bounds that keep memory flat whatever the capture holds.
const (
	// maxMessage is the most bytes of one direction gathered into one
	// message before it is written (a send without PSH, or a bulk transfer).
	maxMessage = 1 << 20
	// maxOutOfOrder is the most bytes one direction holds ahead of a hole;
	// past it the hole is declared missing (the capture lost it).
	maxOutOfOrder = 1 << 20
)

// Options choose what Import keeps.
type Options struct {
	// Hosts keeps conversations with an end in one of these (none: all).
	Hosts []netip.Prefix
	// Ports keeps conversations with an end on one of these ports (none: all).
	Ports []uint16
	// Note reports what was left out or damaged (nil: nothing).
	Note func(format string, args ...any)
	// Framer cuts each TCP stream into messages (nil: a message ends at
	// PSH, at a turn, or at maxMessage). A datagram is always one message.
	Framer proto.Framer
}

// Stats count what Import read.
type Stats struct {
	Packets     int   // packets in the capture
	Conns       int   // conversations written as connections
	Messages    int   // data events written
	Bytes       int64 // payload bytes written
	Missing     int64 // TCP bytes never captured (holes flagged as errors)
	Retransmits int   // TCP segments whose bytes were all seen before
	Filtered    int   // TCP/UDP packets of conversations the filters left out
	Other       int   // packets that are not TCP or UDP over IP
	Fragments   int   // IP fragments (not reassembled)
	Short       int   // truncated or damaged packets
	Links       []int // link types met that import does not read
}

// ErrNoConversation is returned when a capture holds no TCP or UDP
// conversation (after the filters).
var ErrNoConversation = errors.New("no TCP or UDP conversation")

// Import reads every packet of r and emits its conversations as events:
// an open, the messages, a close when the capture saw one. newSink is
// called with the first packet's time, before the first event. A damaged
// capture is imported up to the damage, then the *FormatError returned.
func Import(r *Reader, newSink func(start time.Time) (event.Sink, error), opts Options) (Stats, error) {
	im := &importer{opts: opts, convs: map[convKey]*conv{}}
	var rerr error
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
		im.st.Packets++
		if im.sink == nil {
			if im.sink, err = newSink(p.Time); err != nil {
				return im.st, err
			}
		}
		if err := im.packet(p); err != nil {
			return im.st, err
		}
	}
	if err := im.finish(); err != nil {
		return im.st, err
	}
	if rerr == nil && im.st.Conns == 0 {
		return im.st, im.nothing()
	}
	return im.st, rerr
}

// nothing explains an empty import.
func (im *importer) nothing() error {
	st := &im.st
	var why []string
	if st.Filtered > 0 {
		why = append(why, fmt.Sprintf("%d TCP/UDP packets left out by --host/--port", st.Filtered))
	}
	if st.Other > 0 {
		why = append(why, fmt.Sprintf("%d packets of other protocols", st.Other))
	}
	if st.Fragments > 0 {
		why = append(why, fmt.Sprintf("%d IP fragments", st.Fragments))
	}
	if st.Short > 0 {
		why = append(why, fmt.Sprintf("%d truncated packets", st.Short))
	}
	if len(st.Links) > 0 {
		why = append(why, fmt.Sprintf("unsupported link types %v", st.Links))
	}
	if len(why) == 0 {
		why = append(why, fmt.Sprintf("%d packets", st.Packets))
	}
	return fmt.Errorf("%w in the capture (%s)", ErrNoConversation, strings.Join(why, ", "))
}

type convKey struct {
	a, b netip.AddrPort
	tcp  bool
}

func keyOf(s *segment) convKey {
	a, b := s.src, s.dst
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return convKey{a, b, s.tcp}
}

type conv struct {
	id       uint64
	key      convKey
	tcp      bool
	ends     [2]netip.AddrPort // [0] the client, [1] the server
	dir      [2]dirState       // [0] client → server
	closedBy event.Side        // the side that sent the first FIN
	why      string            // the close's error, from a wirecat export's comment
}

type dirState struct {
	known   bool   // next is set
	next    uint32 // the sequence number of the next byte expected
	finSeen bool
	finSeq  uint32
	closed  bool // every byte up to the FIN went out
	ooo     []oooSeg
	oooLen  int
	pending []byte
	at      time.Time // when the pending message's first byte was captured
}

type oooSeg struct {
	seq  uint32
	data []byte
	psh  bool
	at   time.Time
}

type importer struct {
	opts   Options
	sink   event.Sink
	convs  map[convKey]*conv
	lastID uint64
	st     Stats
	seg    segment
	last   time.Time
	ev     event.Event
}

func (im *importer) packet(p *Packet) error {
	s := &im.seg
	if p.Time.After(im.last) {
		im.last = p.Time
	}
	switch decode(p.Link, p.Data, s) {
	case skipNone:
	case skipLink:
		if !slices.Contains(im.st.Links, p.Link) {
			im.st.Links = append(im.st.Links, p.Link)
			im.note("packet %d: link type %d is not one import reads (Ethernet, Linux cooked, raw IP, loopback); skipping its packets", p.N, p.Link)
		}
		return nil
	case skipFragment:
		if im.st.Fragments == 0 {
			im.note("packet %d: IP fragments are not reassembled; skipping them", p.N)
		}
		im.st.Fragments++
		return nil
	case skipShort:
		if im.st.Short == 0 {
			im.note("packet %d: truncated or damaged (snap length too short?); skipping it", p.N)
		}
		im.st.Short++
		return nil
	default:
		im.st.Other++
		return nil
	}
	s.src = netip.AddrPortFrom(s.src.Addr().Unmap(), s.src.Port())
	s.dst = netip.AddrPortFrom(s.dst.Addr().Unmap(), s.dst.Port())
	key := keyOf(s)
	c := im.convs[key]
	if c == nil {
		if !im.keep(s) {
			im.st.Filtered++
			return nil
		}
		if s.tcp && s.flags&tcpSYN == 0 && len(s.payload) == 0 {
			return nil // an ACK or FIN of a conversation whose start was not captured or that ended
		}
		c = im.open(key, s, p.Time)
		if err := im.emit(c, event.Open, 0, nil, p.Time, nil); err != nil {
			return err
		}
	}
	side := 0
	if s.src != c.ends[0] {
		side = 1
	}
	if !c.tcp {
		return im.deliver(c, side, s.payload, p.Time, true)
	}
	return im.tcp(c, side, s, p)
}

func (im *importer) note(format string, args ...any) {
	if im.opts.Note != nil {
		im.opts.Note(format, args...)
	}
}

// keep applies --host and --port.
func (im *importer) keep(s *segment) bool {
	if len(im.opts.Hosts) > 0 && !slices.ContainsFunc(im.opts.Hosts, func(p netip.Prefix) bool {
		return p.Contains(s.src.Addr()) || p.Contains(s.dst.Addr())
	}) {
		return false
	}
	if len(im.opts.Ports) > 0 && !slices.Contains(im.opts.Ports, s.src.Port()) && !slices.Contains(im.opts.Ports, s.dst.Port()) {
		return false
	}
	return true
}

// open starts a conversation. The client is the side that sent the SYN;
// without a captured handshake, the side on the higher (ephemeral) port,
// and for UDP the first sender.
func (im *importer) open(key convKey, s *segment, t time.Time) *conv {
	im.lastID++
	im.st.Conns++
	c := &conv{id: im.lastID, key: key, tcp: s.tcp, ends: [2]netip.AddrPort{s.src, s.dst}}
	switch {
	case !s.tcp:
	case s.flags&(tcpSYN|tcpACK) == tcpSYN:
	case s.flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK, s.dst.Port() > s.src.Port():
		c.ends[0], c.ends[1] = s.dst, s.src
	}
	im.convs[key] = c
	return c
}

func sideOf(side int) event.Side {
	if side == 0 {
		return event.Client
	}
	return event.Server
}

func (im *importer) emit(c *conv, k event.Kind, from event.Side, data []byte, t time.Time, err error) error {
	im.ev = event.Event{Kind: k, Time: t, Conn: c.id, Transport: "udp", Local: c.ends[1].String(),
		Remote: c.ends[0].String(), Role: event.Relay, From: from, Data: data, Err: err}
	if c.tcp {
		im.ev.Transport = "tcp"
	}
	if k == event.Data {
		im.st.Messages++
		im.st.Bytes += int64(len(data))
	}
	return im.sink.Emit(&im.ev)
}

// tcp reassembles one segment into its direction's stream.
func (im *importer) tcp(c *conv, side int, s *segment, p *Packet) error {
	d := &c.dir[side]
	seq := s.seq
	if s.flags&tcpSYN != 0 {
		if d.known {
			return nil // a retransmitted SYN
		}
		d.known, d.next = true, seq+1
		seq++
	}
	if !d.known {
		d.known, d.next = true, seq
	}
	if s.flags&tcpRST != 0 {
		return im.reset(c, side, p.Time)
	}
	if len(s.payload) > 0 {
		if err := im.segment(c, side, seq, s.payload, s.flags&tcpPSH != 0, p.Time, true); err != nil {
			return err
		}
	}
	if s.flags&tcpFIN != 0 && !d.finSeen {
		d.finSeen, d.finSeq = true, seq+uint32(len(s.payload))
		if c.why == "" {
			c.why, _ = strings.CutPrefix(p.Comment, "wirecat: ")
			if c.why == p.Comment {
				c.why = "" // someone else's comment
			}
		}
	}
	return im.checkFin(c, side, p.Time)
}

// segment places data at seq in direction side: in order it goes out (and
// any held segment it makes contiguous), ahead of a hole it is held,
// behind what went out it is trimmed (a retransmission or an overlap).
func (im *importer) segment(c *conv, side int, seq uint32, data []byte, psh bool, t time.Time, fresh bool) error {
	d := &c.dir[side]
	if rel := int32(seq - d.next); rel < 0 {
		if int(-rel) >= len(data) {
			im.st.Retransmits++
			return nil
		}
		data = data[-rel:]
		seq = d.next
	} else if rel > 0 {
		if !fresh {
			panic("capture: a held segment is still ahead") // hold only calls with rel <= 0
		}
		return im.hold(c, side, seq, data, psh, t)
	}
	d.next += uint32(len(data))
	if err := im.deliver(c, side, data, t, psh); err != nil {
		return err
	}
	for len(d.ooo) > 0 && int32(d.ooo[0].seq-d.next) <= 0 {
		o := d.ooo[0]
		d.ooo = d.ooo[1:]
		d.oooLen -= len(o.data)
		if err := im.segment(c, side, o.seq, o.data, o.psh, o.at, false); err != nil {
			return err
		}
	}
	return nil
}

// hold keeps a segment that arrived ahead of a hole, in sequence order.
// Past maxOutOfOrder bytes held, the hole is given up as missing.
func (im *importer) hold(c *conv, side int, seq uint32, data []byte, psh bool, t time.Time) error {
	d := &c.dir[side]
	i, _ := slices.BinarySearchFunc(d.ooo, seq, func(o oooSeg, s uint32) int { return int(int32(o.seq - s)) })
	d.ooo = slices.Insert(d.ooo, i, oooSeg{seq: seq, data: append([]byte(nil), data...), psh: psh, at: t})
	d.oooLen += len(data)
	if d.oooLen > maxOutOfOrder {
		return im.gap(c, side, d.ooo[0].seq, t)
	}
	return nil
}

// gap declares the bytes from the expected sequence number to upto missing
// (the capture lost them: its buffer overflowed, or it started late), says
// so as an error event, and carries on after them.
func (im *importer) gap(c *conv, side int, upto uint32, t time.Time) error {
	d := &c.dir[side]
	n := upto - d.next
	if err := im.flush(c, side); err != nil {
		return err
	}
	im.st.Missing += int64(n)
	err := fmt.Errorf("capture: %d bytes from the %s are missing (not captured)", n, sideOf(side))
	if e := im.emit(c, event.Error, 0, nil, t, err); e != nil {
		return e
	}
	d.next = upto
	if len(d.ooo) == 0 {
		return nil
	}
	o := d.ooo[0]
	d.ooo = d.ooo[1:]
	d.oooLen -= len(o.data)
	return im.segment(c, side, o.seq, o.data, o.psh, o.at, true)
}

// deliver adds bytes to the direction's message; the other direction's
// message ends first (the conversation turned), and this one ends on PSH,
// for every datagram, and at maxMessage.
func (im *importer) deliver(c *conv, side int, data []byte, t time.Time, end bool) error {
	if !c.tcp {
		return im.emit(c, event.Data, sideOf(side), data, t, nil)
	}
	if im.opts.Framer != nil {
		return im.frames(c, side, data, t)
	}
	if err := im.flush(c, 1-side); err != nil {
		return err
	}
	d := &c.dir[side]
	if len(d.pending) == 0 {
		d.at = t
	}
	d.pending = append(d.pending, data...)
	if end || len(d.pending) >= maxMessage {
		return im.flush(c, side)
	}
	return nil
}

// frames adds bytes to the direction's stream and writes every complete
// frame in it, timed by the segment that brought its first byte.
func (im *importer) frames(c *conv, side int, data []byte, t time.Time) error {
	d := &c.dir[side]
	if len(d.pending) == 0 {
		d.at = t
	}
	d.pending = append(d.pending, data...)
	used := 0
	for used < len(d.pending) {
		msg, n, err := im.opts.Framer.Decode(d.pending[used:])
		if err != nil {
			return im.unframed(c, side, t, err)
		}
		if n == 0 {
			break
		}
		used += n
		if msg != nil {
			if err := im.emit(c, event.Data, sideOf(side), msg, d.at, nil); err != nil {
				return err
			}
		}
		d.at = t
	}
	d.pending = append(d.pending[:0], d.pending[used:]...)
	if len(d.pending) > maxMessage {
		return im.unframed(c, side, t, fmt.Errorf("%d bytes without a complete frame", len(d.pending)))
	}
	return nil
}

// unframed writes bytes that make no frame as they are, after an error
// event saying why.
func (im *importer) unframed(c *conv, side int, t time.Time, why error) error {
	d := &c.dir[side]
	err := fmt.Errorf("capture: %d bytes from the %s make no frame: %v", len(d.pending), sideOf(side), why)
	if e := im.emit(c, event.Error, 0, nil, t, err); e != nil {
		return e
	}
	return im.emitPending(c, side)
}

func (im *importer) flush(c *conv, side int) error {
	d := &c.dir[side]
	if len(d.pending) == 0 {
		return nil
	}
	if im.opts.Framer != nil {
		// The stream's end (or a hole): what is left is a last frame when
		// the framing says so (a last line without its newline).
		if f, ok := im.opts.Framer.(proto.Finisher); ok {
			msg, err := f.Finish(d.pending)
			if err == nil {
				if msg != nil {
					err = im.emit(c, event.Data, sideOf(side), msg, d.at, nil)
				}
				d.pending = d.pending[:0]
				return err
			}
		}
		return im.unframed(c, side, d.at, errors.New("cut short"))
	}
	return im.emitPending(c, side)
}

func (im *importer) emitPending(c *conv, side int) error {
	d := &c.dir[side]
	if len(d.pending) == 0 {
		return nil
	}
	err := im.emit(c, event.Data, sideOf(side), d.pending, d.at, nil)
	if cap(d.pending) > maxMessage {
		d.pending = nil // give a grown buffer back
	} else {
		d.pending = d.pending[:0]
	}
	return err
}

// checkFin closes a direction once every byte before its FIN went out,
// and the conversation once both directions are closed.
func (im *importer) checkFin(c *conv, side int, t time.Time) error {
	d := &c.dir[side]
	if !d.finSeen || d.closed || d.next != d.finSeq || len(d.ooo) > 0 {
		return nil
	}
	d.closed = true
	if c.closedBy == 0 {
		c.closedBy = sideOf(side)
	}
	if err := im.flush(c, side); err != nil {
		return err
	}
	if !c.dir[1-side].closed {
		return nil
	}
	return im.close(c, c.closedBy, c.why, t)
}

func (im *importer) close(c *conv, by event.Side, why string, t time.Time) error {
	delete(im.convs, c.key)
	var err error
	if why != "" {
		err = errors.New(why)
	}
	return im.emit(c, event.Close, by, nil, t, err)
}

// reset ends a conversation at a RST: what was held goes out (holes
// flagged), then the close names the side that reset it.
func (im *importer) reset(c *conv, side int, t time.Time) error {
	for i := range 2 {
		if err := im.drain(c, i, t); err != nil {
			return err
		}
	}
	return im.close(c, sideOf(side), "connection reset by the "+sideOf(side).String(), t)
}

// drain gives up every hole of a direction and writes what it held.
func (im *importer) drain(c *conv, side int, t time.Time) error {
	d := &c.dir[side]
	for len(d.ooo) > 0 {
		if err := im.gap(c, side, d.ooo[0].seq, t); err != nil {
			return err
		}
	}
	if d.finSeen && !d.closed && d.next != d.finSeq {
		if err := im.gap(c, side, d.finSeq, t); err != nil {
			return err
		}
	}
	return im.flush(c, side)
}

// finish ends the capture: held segments go out with their holes flagged,
// and conversations closed in both directions get their close. One still
// open at the end of the capture has no close, as in a session recorded
// while it was still open.
func (im *importer) finish() error {
	if im.sink == nil {
		return nil
	}
	open := make([]*conv, 0, len(im.convs))
	for _, c := range im.convs {
		open = append(open, c)
	}
	slices.SortFunc(open, func(a, b *conv) int { return cmp.Compare(a.id, b.id) })
	for _, c := range open {
		for i := range 2 {
			if err := im.drain(c, i, im.last); err != nil {
				return err
			}
			if c.tcp {
				if err := im.checkFin(c, i, im.last); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
