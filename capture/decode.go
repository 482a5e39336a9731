package capture

import (
	"encoding/binary"
	"net/netip"
)

// Link types import understands.
const (
	linkNull     = 0
	linkEthernet = 1
	linkRaw      = 101
	linkLoop     = 108
	linkSLL      = 113
	linkIPv4     = 228
	linkIPv6     = 229
	linkSLL2     = 276
)

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
)

// segment is a decoded TCP segment or UDP datagram.
type segment struct {
	tcp      bool
	src, dst netip.AddrPort
	flags    byte
	seq      uint32
	payload  []byte
}

// skip says why a packet is not a TCP segment or UDP datagram.
type skip uint8

const (
	skipNone     skip = iota
	skipLink          // an unknown link type
	skipOther         // not IP, or IP but neither TCP nor UDP (ARP, ICMP...)
	skipFragment      // an IP fragment (fragments are not reassembled)
	skipShort         // truncated by the capture's snap length or damaged
)

// decode reads the IP and TCP/UDP headers of a frame of link type link.
func decode(link int, b []byte, s *segment) skip {
	var ethertype uint16
	switch link {
	case linkEthernet:
		if len(b) < 14 {
			return skipShort
		}
		ethertype, b = binary.BigEndian.Uint16(b[12:]), b[14:]
		for ethertype == 0x8100 || ethertype == 0x88a8 { // VLAN tags
			if len(b) < 4 {
				return skipShort
			}
			ethertype, b = binary.BigEndian.Uint16(b[2:]), b[4:]
		}
	case linkSLL:
		if len(b) < 16 {
			return skipShort
		}
		ethertype, b = binary.BigEndian.Uint16(b[14:]), b[16:]
	case linkSLL2:
		if len(b) < 20 {
			return skipShort
		}
		ethertype, b = binary.BigEndian.Uint16(b), b[20:]
	case linkNull, linkLoop:
		if len(b) < 4 {
			return skipShort
		}
		b = b[4:]
		ethertype = versionType(b)
	case linkRaw, linkIPv4, linkIPv6:
		ethertype = versionType(b)
	default:
		return skipLink
	}
	var proto byte
	var src, dst netip.Addr
	switch ethertype {
	case 0x0800:
		if len(b) < 20 || b[0]>>4 != 4 {
			return skipShort
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:]))
		if ihl < 20 || total < ihl || len(b) < ihl {
			return skipShort
		}
		if total <= len(b) {
			b = b[:total] // Ethernet pads short frames
		} else if total > len(b) {
			return skipShort
		}
		if frag := binary.BigEndian.Uint16(b[6:]); frag&0x3fff != 0 {
			return skipFragment
		}
		proto = b[9]
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		b = b[ihl:]
	case 0x86dd:
		if len(b) < 40 || b[0]>>4 != 6 {
			return skipShort
		}
		plen := int(binary.BigEndian.Uint16(b[4:]))
		if 40+plen > len(b) {
			return skipShort
		}
		proto = b[6]
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		b = b[40 : 40+plen]
		for proto == 0 || proto == 43 || proto == 60 || proto == 44 { // extension headers
			if proto == 44 {
				return skipFragment
			}
			if len(b) < 8 {
				return skipShort
			}
			n := (int(b[1]) + 1) * 8
			if n > len(b) {
				return skipShort
			}
			proto, b = b[0], b[n:]
		}
	default:
		return skipOther
	}
	switch proto {
	case 6:
		if len(b) < 20 {
			return skipShort
		}
		off := int(b[12]>>4) * 4
		if off < 20 || off > len(b) {
			return skipShort
		}
		s.tcp = true
		s.flags = b[13]
		s.seq = binary.BigEndian.Uint32(b[4:])
		s.payload = b[off:]
	case 17:
		if len(b) < 8 {
			return skipShort
		}
		n := int(binary.BigEndian.Uint16(b[4:]))
		if n < 8 || n > len(b) {
			return skipShort
		}
		s.tcp = false
		s.flags, s.seq = 0, 0
		s.payload = b[8:n]
	default:
		return skipOther
	}
	s.src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b))
	s.dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:]))
	return skipNone
}

// versionType maps a bare IP header's version to its ethertype.
func versionType(b []byte) uint16 {
	if len(b) == 0 {
		return 0
	}
	switch b[0] >> 4 {
	case 4:
		return 0x0800
	case 6:
		return 0x86dd
	}
	return 0
}
