package proto

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// roundTripSpecs are the framings whose messages survive encode and decode.
var roundTripSpecs = []string{
	"line", "crlf", `delim:,`, "delim:END", `delim:\x03`,
	"len:u8", "len:u16be", "len:u16le", "len:u32be", "len:u32le", "len:varint",
	"slip", "cobs",
}

// boundarySizes sit around every limit a framer or the Reader has: prefix
// widths, the COBS block, the Reader's buffer (cs) and the default max frame.
var boundarySizes = func() []int {
	const cs = readSize
	return []int{0, 1, 2, 253, 254, 255, 256, 257, 508, 509, 65535, 65536, 65537,
		cs - 1, cs, cs + 1, 2*cs - 1, 2*cs + 1, DefaultMaxFrame - 1, DefaultMaxFrame}
}()

func mustParse(t testing.TB, spec string) Framer {
	t.Helper()
	f, err := Parse(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// message makes size bytes rich in the bytes framers treat specially, minus
// those the framing cannot carry as payload.
func message(rng *rand.Rand, spec string, size int) []byte {
	return sanitize(spec, messageFrom(rng, size, 4))
}

// messageFrom makes size random bytes, one in every of them special.
func messageFrom(rng *rand.Rand, size, every int) []byte {
	specials := []byte{0, '\n', '\r', ',', 'E', 'N', 'D', 3, 0xC0, 0xDB, 0xDC, 0xDD, 0xFF}
	m := make([]byte, size)
	for i := range m {
		if rng.IntN(every) == 0 {
			m[i] = specials[rng.IntN(len(specials))]
		} else {
			m[i] = byte(rng.Uint32())
		}
	}
	return m
}

// sanitize replaces the bytes spec cannot carry as payload.
func sanitize(spec string, m []byte) []byte {
	var bad []byte
	switch spec {
	case "line":
		bad = []byte("\n\r")
	case "crlf":
		bad = []byte("\r")
	case `delim:,`:
		bad = []byte(",")
	case "delim:END":
		bad = []byte("E")
	case `delim:\x03`:
		bad = []byte{3}
	}
	for i, c := range m {
		if bytes.IndexByte(bad, c) >= 0 {
			m[i] = 'x'
		}
	}
	return m
}

// maxLen is the longest message a length prefix holds.
func maxLen(spec string) int {
	switch spec {
	case "len:u8":
		return 255
	case "len:u16be", "len:u16le":
		return 65535
	}
	return 1 << 62
}

// chunkReader returns the stream in pieces of random size up to most.
type chunkReader struct {
	data []byte
	rng  *rand.Rand
	most int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(1+c.rng.IntN(c.most), len(p), len(c.data))
	n = copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// readers returns the ways a stream may arrive: whole, a byte at a time
// (small streams only: it is slow under -race), in random pieces, and with
// the last piece carrying io.EOF.
func readers(stream []byte, seed uint64) map[string]io.Reader {
	rng := func() *rand.Rand { return rand.New(rand.NewPCG(seed, 7)) }
	rs := map[string]io.Reader{
		"whole":   bytes.NewReader(stream),
		"chunks":  &chunkReader{stream, rng(), 9000},
		"dataerr": iotest.DataErrReader(&chunkReader{stream, rng(), 3000}),
	}
	if len(stream) < 300_000 {
		rs["onebyte"] = iotest.OneByteReader(bytes.NewReader(stream))
	}
	return rs
}

func readAll(t testing.TB, r *Reader) [][]byte {
	t.Helper()
	var got [][]byte
	for {
		msg, err := r.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("after %d messages: %v", len(got), err)
		}
		got = append(got, bytes.Clone(msg))
	}
}

func sameMessages(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("message %d: got %d bytes %.32x..., want %d bytes %.32x...", i, len(got[i]), got[i], len(want[i]), want[i])
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, spec := range roundTripSpecs {
		f := mustParse(t, spec)
		for _, size := range boundarySizes {
			if size > maxLen(spec) || testing.Short() && size > 2*readSize {
				continue
			}
			t.Run(fmt.Sprintf("%s/size=%d", spec, size), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(size), 1))
				want := [][]byte{message(rng, spec, size), message(rng, spec, 3), message(rng, spec, size)}
				var stream []byte
				for _, m := range want {
					var err error
					if stream, err = f.Encode(stream, m); err != nil {
						t.Fatal(err)
					}
				}
				if spec == "slip" && size == 0 {
					want = want[1:2] // slip skips empty frames
				}
				for name, r := range readers(stream, uint64(size)) {
					t.Run(name, func(t *testing.T) {
						sameMessages(t, readAll(t, NewReader(r, f, DefaultMaxFrame)), want)
					})
				}
				msgs, err := SplitDatagram(f, bytes.Clone(stream), DefaultMaxFrame)
				if err != nil {
					t.Fatalf("SplitDatagram: %v", err)
				}
				sameMessages(t, msgs, want)
			})
		}
	}
}

func TestRoundTripFixed(t *testing.T) {
	for _, size := range boundarySizes {
		if size == 0 {
			continue
		}
		spec := fmt.Sprintf("fixed:%d", size)
		t.Run(spec, func(t *testing.T) {
			f := mustParse(t, spec)
			rng := rand.New(rand.NewPCG(uint64(size), 2))
			var want [][]byte
			var stream []byte
			for range 3 {
				m := message(rng, spec, size)
				want = append(want, m)
				stream, _ = f.Encode(stream, m)
			}
			for name, r := range readers(stream, uint64(size)) {
				t.Run(name, func(t *testing.T) {
					sameMessages(t, readAll(t, NewReader(r, f, DefaultMaxFrame)), want)
				})
			}
		})
	}
}

func TestRawReaderReturnsEachRead(t *testing.T) {
	stream := message(rand.New(rand.NewPCG(1, 1)), "raw", 200_000)
	for name, r := range readers(stream, 3) {
		t.Run(name, func(t *testing.T) {
			rd := NewReader(r, Raw, DefaultMaxFrame)
			var got []byte
			for {
				msg, err := rd.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(msg) == 0 || len(msg) > readSize {
					t.Fatalf("chunk of %d bytes", len(msg))
				}
				got = append(got, msg...)
			}
			if !bytes.Equal(got, stream) {
				t.Fatal("chunks do not add up to the stream")
			}
		})
	}
	// Each Read is one message, whatever it holds.
	rd := NewReader(iotest.OneByteReader(strings.NewReader("ab\n")), nil, 0)
	for _, want := range []string{"a", "b", "\n"} {
		if msg, err := rd.Next(); err != nil || string(msg) != want {
			t.Fatalf("Next = %q, %v; want %q", msg, err, want)
		}
	}
}

func TestEncodeVectors(t *testing.T) {
	seq := func(from, to int) string {
		var b []byte
		for i := from; i <= to; i++ {
			b = append(b, byte(i))
		}
		return hex.EncodeToString(b)
	}
	tests := []struct{ spec, msg, wire string }{
		{"raw", "0102", "0102"},
		{"line", "6869", "68690a"},
		{"crlf", "6869", "68690d0a"},
		{"delim:END", "6869", "6869454e44"},
		{"len:u8", "6869", "026869"},
		{"len:u16be", "6869", "00026869"},
		{"len:u16le", "6869", "02006869"},
		{"len:u32be", "6869", "000000026869"},
		{"len:u32le", "6869", "020000006869"},
		{"len:varint", "", "00"},
		{"len:varint", strings.Repeat("00", 300), "ac02" + strings.Repeat("00", 300)},
		{"fixed:2", "6869", "6869"},
		{"slip", "c0db61", "c0dbdcdbdd61c0"},
		{"slip", "", "c0c0"},
		// COBS vectors from the paper's examples (Cheshire & Baker) and Wikipedia.
		{"cobs", "", "0100"},
		{"cobs", "00", "010100"},
		{"cobs", "0000", "01010100"},
		{"cobs", "001100", "0102110100"},
		{"cobs", "11220033", "031122023300"},
		{"cobs", "11223344", "051122334400"},
		{"cobs", "11000000", "021101010100"},
		{"cobs", seq(1, 254), "ff" + seq(1, 254) + "00"},
		{"cobs", seq(0, 254), "01ff" + seq(1, 254) + "00"},
		{"cobs", seq(1, 255), "ff" + seq(1, 254) + "02ff00"},
		{"cobs", seq(2, 255) + "00", "ff" + seq(2, 255) + "010100"},
		{"cobs", seq(3, 255) + "0001", "fe" + seq(3, 255) + "020100"},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"/"+tt.msg[:min(len(tt.msg), 8)], func(t *testing.T) {
			f := mustParse(t, tt.spec)
			msg, _ := hex.DecodeString(tt.msg)
			wire, err := Encode(f, []byte("pre"), msg)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(wire[3:]); got != tt.wire || string(wire[:3]) != "pre" {
				t.Fatalf("Encode = %s, want %s", got, tt.wire)
			}
			if tt.spec == "slip" && len(msg) == 0 {
				return
			}
			w, _ := hex.DecodeString(tt.wire)
			got, n, err := f.Decode(w)
			if err != nil || n != len(w) || !bytes.Equal(got, msg) {
				t.Fatalf("Decode = %x, %d, %v; want %x, %d", got, n, err, msg, len(w))
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		spec string
		size int
		want string
	}{
		{"len:u8", 256, "len:u8: message of 256 bytes is too long for the length prefix (at most 255)"},
		{"len:u16be", 65536, "at most 65535"},
		{"len:u16le", 70000, "at most 65535"},
		{"fixed:4", 3, "fixed:4: message is 3 bytes, want exactly 4"},
		{"fixed:4", 5, "message is 5 bytes"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.spec, tt.size), func(t *testing.T) {
			dst, err := mustParse(t, tt.spec).Encode([]byte("x"), make([]byte, tt.size))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if string(dst) != "x" {
				t.Fatalf("dst changed to %q on error", dst)
			}
		})
	}
}

func TestDecodeDetails(t *testing.T) {
	tests := []struct {
		spec, in string
		want     []string
	}{
		{"line", "a\r\nb\n\nc\r\r\n", []string{"a", "b", "", "c\r"}},
		{"line", "a\rb\n", []string{"a\rb"}},
		{"crlf", "a\nb\r\n\r\nc\rd\r\n", []string{"a\nb", "", "c\rd"}},
		{"delim:END", "ENENDxENDEND", []string{"EN", "x", ""}},
		{"delim:;;", ";;;a;;", []string{"", ";a"}},
		{"slip", "\xc0\xc0\xc0a\xc0\xc0b\xc0", []string{"a", "b"}},
		{"slip", "a\xc0", []string{"a"}}, // no leading END is fine
		{"cobs", "\x00\x00\x02a\x00\x00\x01\x00", []string{"a", ""}},
		{"len:varint", "\x80\x00\x03abc", []string{"", "abc"}}, // 0x80 0x00 is a long-winded zero
	}
	for _, tt := range tests {
		t.Run(tt.spec+"/"+tt.in, func(t *testing.T) {
			f := mustParse(t, tt.spec)
			for name, r := range readers([]byte(tt.in), 1) {
				t.Run(name, func(t *testing.T) {
					got := readAll(t, NewReader(r, f, 0))
					want := make([][]byte, len(tt.want))
					for i, s := range tt.want {
						want[i] = []byte(s)
					}
					sameMessages(t, got, want)
				})
			}
		})
	}
}

func TestFinish(t *testing.T) {
	tests := []struct {
		spec, in string
		want     []string
	}{
		{"line", "a\nb", []string{"a", "b"}},
		{"line", "a\nb\r", []string{"a", "b"}},
		{"crlf", "a\r\nb\r", []string{"a", "b"}},
		{"crlf", "a\r\nb\n", []string{"a", "b\n"}},
		{"delim:,", "a,b", []string{"a", "b"}},
		{"delim:END", "aENDbEN", []string{"a", "bEN"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"/"+tt.in, func(t *testing.T) {
			f := mustParse(t, tt.spec)
			got := readAll(t, NewReader(strings.NewReader(tt.in), f, 0))
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			msgs, err := SplitDatagram(f, []byte(tt.in), 0)
			if err != nil || fmt.Sprintf("%q", msgs) != fmt.Sprintf("%q", tt.want) {
				t.Fatalf("SplitDatagram = %q, %v; want %q", msgs, err, tt.want)
			}
		})
	}
}
