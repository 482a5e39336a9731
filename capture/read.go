// Package capture reads packet captures (pcap and pcapng, as tcpdump,
// tshark, dumpcap and Wireshark write them) and turns their TCP and UDP
// conversations into wirecat events: TCP streams reassembled, UDP datagrams
// as messages, each conversation a connection with its real timing.
//
// The readers and decoders are small and hand-written rather than
// gopacket's: gopacket's layer registry costs every wirecat command start-up
// time at package init, and import only needs Ethernet, the Linux cooked
// headers, IPv4, IPv6, TCP and UDP. The tests check them against gopacket.
package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// ErrNotCapture is returned (wrapped) when the input is neither pcap nor pcapng.
var ErrNotCapture = errors.New("not a pcap or pcapng capture")

// maxPacket bounds one captured packet: a larger length is damage, not a packet.
const maxPacket = 1 << 20

// maxBlock bounds one pcapng block.
const maxBlock = 16 << 20

// Packet is one captured frame. Data is valid until the next call to Next.
type Packet struct {
	N       int       // packet number, from 1
	Offset  int64     // byte offset of its record in the file
	Time    time.Time // capture time
	Link    int       // link type (1 Ethernet, 113 Linux cooked...)
	Data    []byte
	Comment string // pcapng opt_comment, if any
}

// Reader reads the packets of a pcap or pcapng file in constant memory.
type Reader struct {
	br   *bufio.Reader
	off  int64
	n    int
	buf  []byte
	ng   bool
	bo   binary.ByteOrder
	link int           // pcap: the file's link type
	nano bool          // pcap: nanosecond timestamps
	ifs  []ngInterface // pcapng: interfaces of the current section
}

type ngInterface struct {
	link   int
	unit   float64 // seconds per timestamp tick
	offset int64   // seconds added to every timestamp
}

// FormatError is damage in a capture: where it is and what is wrong.
type FormatError struct {
	Offset int64
	Packet int // the packet being read, from 1
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("byte %d (packet %d): %s", e.Offset, e.Packet, e.Msg)
}

// NewReader reads the file header of r and returns a Reader for its packets.
func NewReader(r io.Reader) (*Reader, error) {
	cr := &Reader{br: bufio.NewReaderSize(r, 1<<20), buf: make([]byte, 64<<10)}
	magic, err := cr.br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("%w: the file is %d bytes long", ErrNotCapture, len(magic))
	}
	switch {
	case binary.LittleEndian.Uint32(magic) == 0x0A0D0D0A:
		cr.ng = true
		return cr, nil
	case binary.LittleEndian.Uint32(magic) == 0xa1b2c3d4, binary.LittleEndian.Uint32(magic) == 0xa1b23c4d:
		cr.bo = binary.LittleEndian
	case binary.BigEndian.Uint32(magic) == 0xa1b2c3d4, binary.BigEndian.Uint32(magic) == 0xa1b23c4d:
		cr.bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("%w (the file starts with % x)", ErrNotCapture, magic)
	}
	h, err := cr.read(24)
	if err != nil {
		return nil, cr.damage("truncated pcap file header")
	}
	cr.nano = cr.bo.Uint32(h) == 0xa1b23c4d
	cr.link = int(cr.bo.Uint32(h[20:]) & 0xffff)
	return cr, nil
}

// read returns the next n bytes (valid until the next read).
func (r *Reader) read(n int) ([]byte, error) {
	if n > len(r.buf) {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	m, err := io.ReadFull(r.br, b)
	r.off += int64(m)
	if err == io.ErrUnexpectedEOF {
		return nil, err
	}
	return b, err
}

func (r *Reader) damage(format string, args ...any) error {
	return &FormatError{Offset: r.off, Packet: r.n + 1, Msg: fmt.Sprintf(format, args...)}
}

// Next returns the next packet; io.EOF at the clean end, a *FormatError
// at damage.
func (r *Reader) Next() (*Packet, error) {
	if r.ng {
		return r.nextNg()
	}
	start := r.off
	h, err := r.read(16)
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case err != nil:
		return nil, r.damage("truncated packet header")
	}
	sec, frac := r.bo.Uint32(h), r.bo.Uint32(h[4:])
	incl, orig := int(r.bo.Uint32(h[8:])), r.bo.Uint32(h[12:])
	if incl > maxPacket {
		return nil, r.damage("packet length %d is more than %d: the file is damaged", incl, maxPacket)
	}
	_ = orig
	data, err := r.read(incl)
	if err != nil {
		return nil, r.damage("truncated packet: %d bytes announced", incl)
	}
	nsec := int64(frac) * 1000
	if r.nano {
		nsec = int64(frac)
	}
	r.n++
	return &Packet{N: r.n, Offset: start, Time: time.Unix(int64(sec), nsec), Link: r.link, Data: data}, nil
}

const (
	ngSHB = 0x0A0D0D0A
	ngIDB = 1
	ngOPB = 2
	ngSPB = 3
	ngEPB = 6
)

func (r *Reader) nextNg() (*Packet, error) {
	for {
		start := r.off
		h, err := r.read(8)
		switch {
		case err == io.EOF:
			return nil, io.EOF
		case err != nil:
			return nil, r.damage("truncated block header")
		}
		typ := binary.LittleEndian.Uint32(h) // the SHB type reads the same both ways
		if typ == ngSHB {
			bom, err := r.br.Peek(4)
			if err != nil {
				return nil, r.damage("truncated section header")
			}
			switch {
			case binary.LittleEndian.Uint32(bom) == 0x1A2B3C4D:
				r.bo = binary.LittleEndian
			case binary.BigEndian.Uint32(bom) == 0x1A2B3C4D:
				r.bo = binary.BigEndian
			default:
				return nil, r.damage("bad byte-order magic % x in a section header", bom)
			}
			r.ifs = r.ifs[:0]
		} else if r.bo == nil {
			return nil, r.damage("a pcapng file must start with a section header")
		} else {
			typ = r.bo.Uint32(h)
		}
		total := int(r.bo.Uint32(h[4:]))
		if total < 12 || total%4 != 0 || total > maxBlock {
			return nil, r.damage("bad block length %d", total)
		}
		body, err := r.read(total - 8)
		if err != nil {
			return nil, r.damage("truncated block: %d bytes announced", total)
		}
		if r.bo.Uint32(body[len(body)-4:]) != uint32(total) {
			return nil, &FormatError{Offset: start, Packet: r.n + 1, Msg: "block lengths at its start and end differ"}
		}
		body = body[:len(body)-4]
		switch typ {
		case ngIDB:
			if len(body) < 8 {
				return nil, r.damage("short interface description block")
			}
			ifc := ngInterface{link: int(r.bo.Uint16(body)), unit: 1e-6}
			r.options(body[8:], func(code int, v []byte) {
				switch {
				case code == 9 && len(v) >= 1: // if_tsresol
					if v[0]&0x80 != 0 {
						ifc.unit = math.Pow(2, -float64(v[0]&0x7f))
					} else {
						ifc.unit = math.Pow(10, -float64(v[0]))
					}
				case code == 14 && len(v) >= 8: // if_tsoffset
					ifc.offset = int64(r.bo.Uint64(v))
				}
			})
			r.ifs = append(r.ifs, ifc)
		case ngEPB, ngOPB:
			if len(body) < 20 {
				return nil, r.damage("short packet block")
			}
			var ifID int
			if typ == ngEPB {
				ifID = int(r.bo.Uint32(body))
			} else {
				ifID = int(r.bo.Uint16(body))
			}
			if ifID >= len(r.ifs) {
				return nil, &FormatError{Offset: start, Packet: r.n + 1, Msg: fmt.Sprintf("packet on interface %d, which was not described", ifID)}
			}
			ifc := r.ifs[ifID]
			ts := uint64(r.bo.Uint32(body[4:]))<<32 | uint64(r.bo.Uint32(body[8:]))
			caplen := int(r.bo.Uint32(body[12:]))
			if caplen > len(body)-20 {
				return nil, &FormatError{Offset: start, Packet: r.n + 1, Msg: fmt.Sprintf("captured length %d is more than the block holds", caplen)}
			}
			p := &Packet{Offset: start, Link: ifc.link, Data: body[20 : 20+caplen], Time: ifc.time(ts)}
			r.options(body[min(20+(caplen+3)&^3, len(body)):], func(code int, v []byte) {
				if code == 1 {
					p.Comment = string(v)
				}
			})
			r.n++
			p.N = r.n
			return p, nil
		case ngSPB:
			if len(r.ifs) == 0 || len(body) < 4 {
				return nil, &FormatError{Offset: start, Packet: r.n + 1, Msg: "simple packet block without an interface"}
			}
			orig := int(r.bo.Uint32(body))
			data := body[4:]
			if orig < len(data) {
				data = data[:orig]
			}
			r.n++
			return &Packet{N: r.n, Offset: start, Link: r.ifs[0].link, Data: data}, nil
		}
		// Any other block (statistics, name resolution, custom) is skipped.
	}
}

func (ifc ngInterface) time(ts uint64) time.Time {
	if ifc.unit == 1e-6 {
		return time.Unix(ifc.offset+int64(ts/1e6), int64(ts%1e6)*1000)
	}
	if ifc.unit == 1e-9 {
		return time.Unix(ifc.offset+int64(ts/1e9), int64(ts%1e9))
	}
	sec := float64(ts) * ifc.unit
	whole := math.Floor(sec)
	return time.Unix(ifc.offset+int64(whole), int64((sec-whole)*1e9))
}

// options calls fn for each pcapng option in b until opt_endofopt.
func (r *Reader) options(b []byte, fn func(code int, v []byte)) {
	for len(b) >= 4 {
		code, n := int(r.bo.Uint16(b)), int(r.bo.Uint16(b[2:]))
		if code == 0 || 4+n > len(b) {
			return
		}
		fn(code, b[4:4+n])
		b = b[min(4+(n+3)&^3, len(b)):] // a damaged last option may lack its padding
	}
}
