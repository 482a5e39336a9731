package proto

import (
	"bytes"
	"fmt"
)

// cobsFramer is Consistent Overhead Byte Stuffing with a 0x00 after each
// frame. Empty frames (consecutive zeros) are skipped; an empty message
// encodes as 0x01 0x00 and so survives a round trip.
type cobsFramer struct{}

func (c cobsFramer) Decode(buf []byte) ([]byte, int, error) { return c.decodeFrom(buf, 0) }

func (cobsFramer) decodeFrom(buf []byte, from int) ([]byte, int, error) {
	frame, n, skip := splitFrame(buf, from, 0)
	if frame == nil {
		return nil, skip, nil
	}
	// Check the block chain before rewriting, so a bad frame leaves buf intact.
	if err := cobsCheck(frame); err != nil {
		return nil, 0, err
	}
	return cobsDecode(frame[:0], frame), n, nil
}

// decodeInto decodes the first frame into *scratch, leaving buf untouched.
func (cobsFramer) decodeInto(scratch *[]byte, buf []byte, from int) ([]byte, int, error) {
	frame, n, skip := splitFrame(buf, from, 0)
	if frame == nil {
		return nil, skip, nil
	}
	if err := cobsCheck(frame); err != nil {
		return nil, n, err
	}
	dst := cobsDecode((*scratch)[:0], frame)
	*scratch = dst[:0]
	return dst, n, nil
}

// cobsCheck reports a block that overruns the frame.
func cobsCheck(frame []byte) error {
	for i := 0; i < len(frame); i += int(frame[i]) {
		if i+int(frame[i]) > len(frame) {
			return fmt.Errorf("cobs: block of %d bytes at offset %d overruns the %d-byte frame", frame[i]-1, i, len(frame))
		}
	}
	return nil
}

// cobsDecode appends the decoded checked frame to dst. dst may be frame[:0]:
// decoding shrinks, so writing never overtakes reading.
func cobsDecode(dst, frame []byte) []byte {
	for i := 0; i < len(frame); {
		code := int(frame[i])
		dst = append(dst, frame[i+1:i+code]...)
		i += code
		if code < 0xFF && i < len(frame) {
			dst = append(dst, 0)
		}
	}
	return dst
}

func (cobsFramer) Encode(dst, msg []byte) ([]byte, error) {
	codeAt := len(dst)
	dst = append(dst, 0)
	for {
		run := msg[:min(len(msg), 254)]
		if z := bytes.IndexByte(run, 0); z >= 0 {
			dst = append(dst, run[:z]...)
			dst[codeAt] = byte(z + 1)
			msg = msg[z+1:]
			codeAt = len(dst)
			dst = append(dst, 0)
			continue
		}
		dst = append(dst, run...)
		msg = msg[len(run):]
		if len(run) < 254 {
			dst[codeAt] = byte(len(run) + 1)
			break
		}
		dst[codeAt] = 0xFF
		if len(msg) == 0 {
			break
		}
		codeAt = len(dst)
		dst = append(dst, 0)
	}
	return append(dst, 0), nil
}

func (cobsFramer) String() string        { return "cobs" }
func (cobsFramer) wireLimit(max int) int { return max + max/254 + 2 }
