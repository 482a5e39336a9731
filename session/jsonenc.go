package session

import (
	"encoding/binary"
	"strconv"
	"time"
	"unicode/utf8"
)

// The encoder is hand-rolled because Emit sits on the data path: encoding/json
// would allocate and reflect for every message.

const (
	ascSafe  = iota // copied as is
	ascShort        // needs a two-byte escape and is printable: " \ \n \r \t
	ascCtrl         // a control character: not printable text
)

var ascClass, ascEsc [utf8.RuneSelf]byte

func init() {
	for c := range utf8.RuneSelf {
		switch {
		case c == '"' || c == '\\':
			ascClass[c], ascEsc[c] = ascShort, byte(c)
		case c == '\n':
			ascClass[c], ascEsc[c] = ascShort, 'n'
		case c == '\r':
			ascClass[c], ascEsc[c] = ascShort, 'r'
		case c == '\t':
			ascClass[c], ascEsc[c] = ascShort, 't'
		case c < 0x20 || c == 0x7f:
			ascClass[c] = ascCtrl
		}
	}
}

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// plainWord reports whether 8 bytes are all printable ASCII needing no
// escape, so the common case skips them a word at a time.
func plainWord(x uint64) bool {
	less := (x - lo8*0x20) & ^x & hi8 // a byte < 0x20
	q := x ^ (lo8 * '"')
	b := x ^ (lo8 * '\\')
	d := x ^ (lo8 * 0x7f)
	zero := ((q - lo8) & ^q) | ((b - lo8) & ^b) | ((d - lo8) & ^d)
	return (x&hi8)|less|(zero&hi8) == 0
}

// appendText appends p as a JSON string if it is printable (valid UTF-8
// with no control character but tab, newline and carriage return; C0, DEL
// and C1 controls are not printable, as in output.Printable); otherwise it
// reports false and what it appended is garbage to cut off.
func appendText(dst, p []byte) ([]byte, bool) {
	dst = append(dst, '"')
	start := 0
	i := 0
	for i < len(p) {
		if i+8 <= len(p) && plainWord(binary.LittleEndian.Uint64(p[i:])) {
			i += 8
			continue
		}
		// Something in the next 8 bytes needs a look: take them one by one.
		for end := min(i+8, len(p)); i < end; {
			c := p[i]
			if c < utf8.RuneSelf {
				switch ascClass[c] {
				case ascSafe:
					i++
				case ascShort:
					dst = append(dst, p[start:i]...)
					dst = append(dst, '\\', ascEsc[c])
					i++
					start = i
				default:
					return dst, false
				}
				continue
			}
			r, size := utf8.DecodeRune(p[i:])
			if (r == utf8.RuneError && size == 1) || (r >= 0x80 && r <= 0x9f) {
				return dst, false
			}
			i += size
		}
	}
	dst = append(dst, p[start:]...)
	return append(dst, '"'), true
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping every control
// character and replacing invalid UTF-8 with U+FFFD, as encoding/json does.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case ascClass[c] == ascShort:
				dst = append(dst, s[start:i]...)
				dst = append(dst, '\\', ascEsc[c])
				start = i + 1
			case c < 0x20:
				dst = append(dst, s[start:i]...)
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
				start = i + 1
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			start = i + 1
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendSeconds appends d as decimal seconds, exact to the nanosecond
// and without trailing zeros: 1.5, 0.000123, 12.
func appendSeconds(dst []byte, d time.Duration) []byte {
	if d < 0 {
		dst = append(dst, '-')
		if d == -1<<63 {
			d++ // cannot be negated; off by a nanosecond
		}
		d = -d
	}
	dst = strconv.AppendInt(dst, int64(d/time.Second), 10)
	frac := int64(d % time.Second)
	if frac == 0 {
		return dst
	}
	var buf [10]byte
	buf[0] = '.'
	for i := 9; i >= 1; i-- {
		buf[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 10
	for buf[n-1] == '0' {
		n--
	}
	return append(dst, buf[:n]...)
}
