package session

// A pcapng writer and the few headers an export synthesises (Ethernet,
// IPv4/IPv6, TCP/UDP), written by hand: a general packet library costs every
// wirecat start-up half a millisecond of package initialisation (tables of
// every protocol it knows) for a feature only `show --pcap` uses.

import (
	"bufio"
	"encoding/binary"
	"io"
	"net/netip"
	"time"
)

// pcapng block types and option codes (draft-ietf-opsawg-pcapng).
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 0x00000001
	blockEPB = 0x00000006

	optEnd     = 0
	optComment = 1
	optShbApp  = 4 // shb_userappl
	optIfName  = 2
	optTsResol = 9 // if_tsresol

	linkEthernet = 1
)

// ngWriter writes one section with one Ethernet interface, nanosecond
// timestamps, in the machine's byte order (little endian here, as readers
// take either).
type ngWriter struct {
	w   *bufio.Writer
	blk []byte // scratch for one block
}

func newNgWriter(w io.Writer, app, comment string) (*ngWriter, error) {
	ng := &ngWriter{w: bufio.NewWriterSize(w, 64<<10)}
	// Section header: byte-order magic, version 1.0, unknown section length.
	b := ng.start(blockSHB)
	b = le.AppendUint32(b, 0x1A2B3C4D)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, ^uint64(0))
	if comment != "" {
		b = appendOpt(b, optComment, []byte(comment))
	}
	b = appendOpt(b, optShbApp, []byte(app))
	b = appendOpt(b, optEnd, nil)
	if err := ng.finish(b); err != nil {
		return nil, err
	}
	// Interface description: Ethernet, no snap length limit, nanoseconds.
	b = ng.start(blockIDB)
	b = le.AppendUint16(b, linkEthernet)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, 0)
	b = appendOpt(b, optIfName, []byte("wirecat"))
	b = appendOpt(b, optTsResol, []byte{9})
	b = appendOpt(b, optEnd, nil)
	if err := ng.finish(b); err != nil {
		return nil, err
	}
	return ng, nil
}

var le = binary.LittleEndian

// start begins a block: its type and a length filled in by finish.
func (ng *ngWriter) start(typ uint32) []byte {
	b := le.AppendUint32(ng.blk[:0], typ)
	return le.AppendUint32(b, 0)
}

func (ng *ngWriter) finish(b []byte) error {
	n := uint32(len(b) + 4)
	le.PutUint32(b[4:], n)
	b = le.AppendUint32(b, n)
	ng.blk = b
	_, err := ng.w.Write(b)
	return err
}

// appendOpt appends one option, padded to 32 bits.
func appendOpt(b []byte, code uint16, val []byte) []byte {
	b = le.AppendUint16(b, code)
	b = le.AppendUint16(b, uint16(len(val)))
	b = append(b, val...)
	return append(b, make([]byte, pad4(len(val)))...)
}

func pad4(n int) int { return (4 - n%4) % 4 }

// writePacket writes one enhanced packet block; comment may be empty.
func (ng *ngWriter) writePacket(ts time.Time, data []byte, comment string) error {
	b := ng.start(blockEPB)
	b = le.AppendUint32(b, 0) // interface 0
	ns := uint64(ts.UnixNano())
	b = le.AppendUint32(b, uint32(ns>>32))
	b = le.AppendUint32(b, uint32(ns))
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	b = append(b, make([]byte, pad4(len(data)))...)
	if comment != "" {
		b = appendOpt(b, optComment, []byte(comment))
		b = appendOpt(b, optEnd, nil)
	}
	return ng.finish(b)
}

func (ng *ngWriter) Flush() error { return ng.w.Flush() }

// TCP flags as on the wire.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpPSH = 0x08
	tcpACK = 0x10
)

const (
	protoTCP = 6
	protoUDP = 17
)

// segment describes one synthesised packet.
type segment struct {
	src, dst   netip.AddrPort // same IP version
	smac, dmac [6]byte
	tcp        bool
	flags      byte // TCP flags
	seq, ack   uint32
	payload    []byte
}

// appendFrame appends s as an Ethernet frame with IPv4 or IPv6 and TCP or
// UDP headers, lengths and checksums filled in.
func appendFrame(b []byte, s *segment) []byte {
	v4 := s.src.Addr().Is4()
	start := len(b)
	b = append(b, s.dmac[:]...)
	b = append(b, s.smac[:]...)
	if v4 {
		b = binary.BigEndian.AppendUint16(b, 0x0800)
	} else {
		b = binary.BigEndian.AppendUint16(b, 0x86DD)
	}
	proto, l4len := byte(protoUDP), 8+len(s.payload)
	if s.tcp {
		proto, l4len = protoTCP, 20+len(s.payload)
	}
	be := binary.BigEndian
	ipStart := len(b)
	if v4 {
		b = append(b, 0x45, 0)
		b = be.AppendUint16(b, uint16(20+l4len))
		b = append(b, 0, 0, 0x40, 0, 64, proto, 0, 0) // id 0, don't fragment, ttl 64
		src, dst := s.src.Addr().As4(), s.dst.Addr().As4()
		b = append(b, src[:]...)
		b = append(b, dst[:]...)
		be.PutUint16(b[ipStart+10:], ^fold(sum(0, b[ipStart:ipStart+20])))
	} else {
		b = be.AppendUint32(b, 6<<28)
		b = be.AppendUint16(b, uint16(l4len))
		b = append(b, proto, 64)
		src, dst := s.src.Addr().As16(), s.dst.Addr().As16()
		b = append(b, src[:]...)
		b = append(b, dst[:]...)
	}
	l4 := len(b)
	b = be.AppendUint16(b, s.src.Port())
	b = be.AppendUint16(b, s.dst.Port())
	if s.tcp {
		b = be.AppendUint32(b, s.seq)
		b = be.AppendUint32(b, s.ack)
		b = append(b, 5<<4, s.flags)
		b = be.AppendUint16(b, 65535) // window
		b = append(b, 0, 0, 0, 0)     // checksum, urgent pointer
	} else {
		b = be.AppendUint16(b, uint16(l4len))
		b = append(b, 0, 0)
	}
	b = append(b, s.payload...)

	// The checksum covers a pseudo-header of addresses, protocol and length.
	var c uint32
	if v4 {
		c = sum(c, b[ipStart+12:ipStart+20])
	} else {
		c = sum(c, b[ipStart+8:ipStart+40])
	}
	c += uint32(proto) + uint32(l4len)
	ck := ^fold(sum(c, b[l4:]))
	if !s.tcp && ck == 0 {
		ck = 0xffff // zero means "no checksum" in UDP
	}
	off := l4 + 6
	if s.tcp {
		off = l4 + 16
	}
	be.PutUint16(b[off:], ck)
	// Ethernet pads short frames to its 60-byte minimum (without the FCS).
	if n := len(b) - start; n < 60 {
		b = append(b, make([]byte, 60-n)...)
	}
	return b
}

// sum adds b as big-endian 16-bit words to c (ones' complement, unfolded).
func sum(c uint32, b []byte) uint32 {
	for len(b) >= 2 {
		c += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		c += uint32(b[0]) << 8
	}
	return c
}

func fold(c uint32) uint16 {
	for c > 0xffff {
		c = c>>16 + c&0xffff
	}
	return uint16(c)
}
