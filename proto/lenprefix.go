package proto

import (
	"encoding/binary"
	"fmt"
	"math"
)

// lenKinds lists the length prefixes in the order help text shows them.
var lenKinds = []string{"u8", "u16be", "u16le", "u32be", "u32le", "varint"}

// lenFramer reads a length prefix that counts the payload after it.
type lenFramer struct {
	kind string
	size int    // prefix bytes; 0 for varint
	max  uint64 // largest length the prefix can hold
}

func newLenFramer(kind string) (lenFramer, bool) {
	switch kind {
	case "u8":
		return lenFramer{kind, 1, math.MaxUint8}, true
	case "u16be", "u16le":
		return lenFramer{kind, 2, math.MaxUint16}, true
	case "u32be", "u32le":
		return lenFramer{kind, 4, math.MaxUint32}, true
	case "varint":
		return lenFramer{kind, 0, math.MaxInt64}, true
	}
	return lenFramer{}, false
}

// header returns the declared payload length and the prefix size, or
// hlen == 0 when the prefix is not complete yet.
func (l lenFramer) header(buf []byte) (length uint64, hlen int, err error) {
	if l.size == 0 {
		v, n := binary.Uvarint(buf)
		if n < 0 {
			return 0, 0, fmt.Errorf("%s: length prefix overflows 64 bits", l)
		}
		return v, n, nil
	}
	if len(buf) < l.size {
		return 0, 0, nil
	}
	switch l.kind {
	case "u8":
		length = uint64(buf[0])
	case "u16be":
		length = uint64(binary.BigEndian.Uint16(buf))
	case "u16le":
		length = uint64(binary.LittleEndian.Uint16(buf))
	case "u32be":
		length = uint64(binary.BigEndian.Uint32(buf))
	case "u32le":
		length = uint64(binary.LittleEndian.Uint32(buf))
	}
	return length, l.size, nil
}

func (l lenFramer) Decode(buf []byte) ([]byte, int, error) {
	length, hlen, err := l.header(buf)
	if err != nil || hlen == 0 {
		return nil, 0, err
	}
	if uint64(len(buf)-hlen) < length {
		return nil, 0, nil
	}
	end := hlen + int(length)
	return buf[hlen:end], end, nil
}

func (l lenFramer) declared(buf []byte) int64 {
	length, hlen, err := l.header(buf)
	if err != nil || hlen == 0 {
		return -1
	}
	return int64(min(length, math.MaxInt64))
}

func (l lenFramer) wireSize(buf []byte) int64 {
	length, hlen, err := l.header(buf)
	if err != nil || hlen == 0 || length > math.MaxInt64-uint64(hlen) {
		return -1
	}
	return int64(hlen) + int64(length)
}

func (l lenFramer) Encode(dst, msg []byte) ([]byte, error) {
	if uint64(len(msg)) > l.max {
		return dst, fmt.Errorf("%s: message of %d bytes is too long for the length prefix (at most %d)", l, len(msg), l.max)
	}
	n := len(msg)
	switch l.kind {
	case "u8":
		dst = append(dst, byte(n))
	case "u16be":
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	case "u16le":
		dst = binary.LittleEndian.AppendUint16(dst, uint16(n))
	case "u32be":
		dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	case "u32le":
		dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	case "varint":
		dst = binary.AppendUvarint(dst, uint64(n))
	}
	return append(dst, msg...), nil
}

func (l lenFramer) String() string { return "len:" + l.kind }

func (l lenFramer) wireLimit(max int) int {
	if l.size == 0 {
		return max + binary.MaxVarintLen64
	}
	return max + l.size
}
