package proto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// checkFramer holds for any input: decoding never panics or claims bytes it
// was not given, decoding in one go and a byte at a time agree, and a message
// the framing can carry survives encode and decode.
func checkFramer(t *testing.T, f Framer, data []byte, encodable func([]byte) bool) {
	whole, wholeErr := decodeAll(t, f, bytes.Clone(data))

	rd := NewReader(iotest.OneByteReader(bytes.NewReader(bytes.Clone(data))), f, DefaultMaxFrame)
	var streamed [][]byte
	var streamErr error
	for {
		msg, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				streamErr = err
			}
			break
		}
		streamed = append(streamed, bytes.Clone(msg))
	}
	if (wholeErr == nil) != (streamErr == nil) {
		t.Fatalf("%s: whole: %v; byte by byte: %v", Name(f), wholeErr, streamErr)
	}
	if len(whole) != len(streamed) {
		t.Fatalf("%s: %d messages whole, %d byte by byte", Name(f), len(whole), len(streamed))
	}
	for i := range whole {
		if !bytes.Equal(whole[i], streamed[i]) {
			t.Fatalf("%s: message %d: %q whole, %q byte by byte", Name(f), i, whole[i], streamed[i])
		}
	}

	wire, err := f.Encode(nil, data)
	if err != nil || !encodable(data) {
		return
	}
	msg, n, err := f.Decode(bytes.Clone(wire))
	if err != nil || n != len(wire) || !bytes.Equal(msg, data) {
		t.Fatalf("%s: Decode(Encode(%q)) = %q, %d, %v; want all %d bytes", Name(f), data, msg, n, err, len(wire))
	}
}

// decodeAll decodes buf with direct Decode calls, checking the counts.
func decodeAll(t *testing.T, f Framer, buf []byte) ([][]byte, error) {
	var msgs [][]byte
	for len(buf) > 0 {
		msg, n, err := f.Decode(buf)
		if err != nil {
			return msgs, err
		}
		if n < 0 || n > len(buf) || len(msg) > n {
			t.Fatalf("%s: Decode of %d bytes = %d-byte message, n = %d", Name(f), len(buf), len(msg), n)
		}
		if n == 0 {
			s, _ := f.(sizer)
			if err := checkDeclared(s, f, buf, DefaultMaxFrame); err != nil {
				return msgs, err
			}
			fin, ok := f.(Finisher)
			if !ok {
				return msgs, ErrTruncated
			}
			msg, err = fin.Finish(buf)
			return append(msgs, bytes.Clone(msg)), err
		}
		if msg != nil {
			if len(msg) > DefaultMaxFrame {
				return msgs, ErrTooLarge
			}
			msgs = append(msgs, bytes.Clone(msg))
		}
		buf = buf[n:]
	}
	return msgs, nil
}

// terminated reports whether msg followed by sep splits back into msg.
func terminated(sep []byte) func([]byte) bool {
	return func(msg []byte) bool {
		return bytes.Index(append(bytes.Clone(msg), sep...), sep) == len(msg)
	}
}

func FuzzLine(f *testing.F) {
	for _, s := range []string{"", "a\n", "a\r\nb", "\r\r\n\n", "x\ry\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFramer(t, lineFramer{}, data, func(m []byte) bool {
			return bytes.IndexByte(m, '\n') < 0 && !bytes.HasSuffix(m, []byte("\r"))
		})
		checkFramer(t, crlfFramer{}, data, terminated(crlf))
	})
}

func FuzzDelim(f *testing.F) {
	f.Add([]byte(","), []byte("a,b,,c"))
	f.Add([]byte("END"), []byte("ENENDxEND"))
	f.Add([]byte("aba"), []byte("ababa"))
	f.Add([]byte{3}, []byte("\x02T=21\x03"))
	f.Fuzz(func(t *testing.T, sep, data []byte) {
		if len(sep) == 0 {
			return
		}
		checkFramer(t, delimFramer{sep}, data, terminated(sep))
	})
}

func FuzzLen(f *testing.F) {
	f.Add(uint8(0), []byte("\x02ab\x00\x01"))
	f.Add(uint8(1), []byte("\x00\x03abc"))
	f.Add(uint8(4), []byte("\x03\x00\x00\x00abc"))
	f.Add(uint8(5), []byte("\xac\x02"))
	f.Add(uint8(5), []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f"))
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		lf, _ := newLenFramer(lenKinds[int(kind)%len(lenKinds)])
		checkFramer(t, lf, data, func([]byte) bool { return true })
	})
}

func FuzzFixed(f *testing.F) {
	f.Add(uint16(1), []byte("abc"))
	f.Add(uint16(4), []byte("abcdefgh"))
	f.Add(uint16(3), []byte("abcd"))
	f.Fuzz(func(t *testing.T, size uint16, data []byte) {
		if size == 0 {
			return
		}
		checkFramer(t, fixedFramer{int(size)}, data, func(m []byte) bool { return len(m) == int(size) })
	})
}

func FuzzSLIP(f *testing.F) {
	for _, s := range []string{"\xc0a\xc0", "\xc0\xdb\xdc\xdb\xdd\xc0", "\xdbA\xc0", "\xc0\xc0\xc0", "ab\xdb\xc0"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFramer(t, slipFramer{}, data, func(m []byte) bool { return len(m) > 0 })
	})
}

func FuzzCOBS(f *testing.F) {
	for _, s := range []string{"\x01\x00", "\x03\x11\x22\x02\x33\x00", "\x05ab\x00", "\x00\x00\x02a\x00", "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFramer(t, cobsFramer{}, data, func([]byte) bool { return true })
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"raw", "line", "delim:,", `delim:\x03`, "len:u24", "fixed:8", "lua:x.lua", ":", "delim:\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		fr, err := Parse(spec, nil)
		if err != nil {
			if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), ValidForms) {
				t.Fatalf("Parse(%q): %v", spec, err)
			}
			return
		}
		again, err := Parse(Name(fr), nil)
		if err != nil || Name(again) != Name(fr) {
			t.Fatalf("Parse(Name(Parse(%q))) = %v, %v", spec, again, err)
		}
	})
}

func FuzzUnescape(f *testing.F) {
	for _, s := range []string{"", `a\nb`, `\x0`, `\xzz`, `\`, `\\\0\r\t`, "é\\xC0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Unescape(s)
		if err != nil {
			if !strings.Contains(err.Error(), "position") {
				t.Fatalf("Unescape(%q): %v names no position", s, err)
			}
			return
		}
		if !strings.Contains(s, `\`) && string(b) != s {
			t.Fatalf("Unescape(%q) = %q changed a plain string", s, b)
		}
		back, err := Unescape(Escape(b))
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("Unescape(Escape(%q)) = %q, %v", b, back, err)
		}
	})
}

func FuzzParseHex(f *testing.F) {
	for _, s := range []string{"", "01 02 ff", "0x01:0X02", "1", "0x", "zz", "01,,02\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseHex(s)
		if err != nil {
			if !strings.Contains(err.Error(), "position") {
				t.Fatalf("ParseHex(%q): %v names no position", s, err)
			}
			return
		}
		if 2*len(b) > len(s) {
			t.Fatalf("ParseHex(%q) made %d bytes", s, len(b))
		}
		back, err := ParseHex(fmt.Sprintf("% x", b))
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("ParseHex(% x) = %x, %v", b, back, err)
		}
	})
}
