package proto

import (
	"bytes"
	"fmt"
)

// SLIP special bytes (RFC 1055).
const (
	slipEnd    = 0xC0
	slipEsc    = 0xDB
	slipEscEnd = 0xDC
	slipEscEsc = 0xDD
)

// slipFramer is RFC 1055 SLIP. The encoder sends END before and after each
// message, as the RFC suggests, to flush line noise; the decoder therefore
// skips empty frames, so an empty message does not survive a round trip.
type slipFramer struct{}

func (s slipFramer) Decode(buf []byte) ([]byte, int, error) { return s.decodeFrom(buf, 0) }

func (slipFramer) decodeFrom(buf []byte, from int) ([]byte, int, error) {
	frame, n, skip := splitFrame(buf, from, slipEnd)
	if frame == nil {
		return nil, skip, nil
	}
	first := bytes.IndexByte(frame, slipEsc)
	if first < 0 {
		return frame, n, nil
	}
	// Check every escape before rewriting, so a bad frame leaves buf intact.
	if err := slipCheck(frame, first); err != nil {
		return nil, 0, err
	}
	return slipUnescape(frame[:first], frame, first), n, nil
}

// decodeInto unescapes the first frame into *scratch, leaving buf untouched.
// A frame without escapes is returned as it is in buf.
func (slipFramer) decodeInto(scratch *[]byte, buf []byte, from int) ([]byte, int, error) {
	frame, n, skip := splitFrame(buf, from, slipEnd)
	if frame == nil {
		return nil, skip, nil
	}
	first := bytes.IndexByte(frame, slipEsc)
	if first < 0 {
		return frame, n, nil
	}
	if err := slipCheck(frame, first); err != nil {
		return nil, n, err
	}
	dst := slipUnescape(append((*scratch)[:0], frame[:first]...), frame, first)
	*scratch = dst[:0]
	return dst, n, nil
}

// slipCheck reports a bad escape, the first one at index first.
func slipCheck(frame []byte, first int) error {
	for i := first; i >= 0; {
		if i+1 == len(frame) {
			return fmt.Errorf("slip: frame ends inside an escape (0xdb before 0xc0)")
		}
		if c := frame[i+1]; c != slipEscEnd && c != slipEscEsc {
			return fmt.Errorf("slip: invalid escape 0xdb 0x%02x (want 0xdb 0xdc or 0xdb 0xdd)", c)
		}
		i = nextIndex(frame, i+2, slipEsc)
	}
	return nil
}

// slipUnescape appends the checked frame from its first escape on to dst.
// dst may be frame[:first]: unescaping shrinks, so the runs between escapes
// move down without overtaking what is still to read.
func slipUnescape(dst, frame []byte, first int) []byte {
	for r := first; r >= 0; {
		if frame[r+1] == slipEscEsc {
			dst = append(dst, slipEsc)
		} else {
			dst = append(dst, slipEnd)
		}
		next := nextIndex(frame, r+2, slipEsc)
		stop := next
		if next < 0 {
			stop = len(frame)
		}
		dst = append(dst, frame[r+2:stop]...)
		r = next
	}
	return dst
}

// nextIndex is the index of c in b at or after from, or -1.
func nextIndex(b []byte, from int, c byte) int {
	i := bytes.IndexByte(b[from:], c)
	if i < 0 {
		return -1
	}
	return from + i
}

// splitFrame finds the first non-empty frame of buf terminated by end. It
// returns the frame and the bytes it used, or a nil frame and the number of
// leading terminators to skip (possibly 0: more bytes needed). buf[:from]
// holds no terminator: an earlier call searched it.
func splitFrame(buf []byte, from int, end byte) (frame []byte, n, skip int) {
	k := 0
	for k < len(buf) && buf[k] == end {
		k++
	}
	from = max(from, k)
	i := bytes.IndexByte(buf[from:], end)
	if i < 0 {
		return nil, 0, k
	}
	i += from
	return buf[k:i], i + 1, 0
}

func (slipFramer) Encode(dst, msg []byte) ([]byte, error) {
	dst = append(dst, slipEnd)
	// Jump between special bytes, tracking the next of each kind, so
	// payloads with few of them are copied in bulk.
	nextEnd, nextEsc := nextIndex(msg, 0, slipEnd), nextIndex(msg, 0, slipEsc)
	start := 0
	for nextEnd >= 0 || nextEsc >= 0 {
		var i int
		var code byte
		if nextEsc < 0 || nextEnd >= 0 && nextEnd < nextEsc {
			i, code = nextEnd, slipEscEnd
			nextEnd = nextIndex(msg, i+1, slipEnd)
		} else {
			i, code = nextEsc, slipEscEsc
			nextEsc = nextIndex(msg, i+1, slipEsc)
		}
		dst = append(append(dst, msg[start:i]...), slipEsc, code)
		start = i + 1
	}
	return append(append(dst, msg[start:]...), slipEnd), nil
}

func (slipFramer) String() string        { return "slip" }
func (slipFramer) wireLimit(max int) int { return 2*max + 2 }
