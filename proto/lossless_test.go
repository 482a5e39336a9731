package proto

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// piece is what one Next of a Lossless Reader gave.
type piece struct {
	msg, wire string
	unframed  error
}

// readLossless reads src to the end in Lossless mode.
func readLossless(t *testing.T, src io.Reader, f Framer, max int) []piece {
	t.Helper()
	r := NewReader(src, f, max)
	r.Lossless()
	var out []piece
	for range 1 << 20 {
		msg, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, piece{string(msg), string(r.Wire()), r.Unframed()})
	}
	t.Fatal("no end")
	return nil
}

func wireOf(ps []piece) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.wire)
	}
	return b.String()
}

// randomReads hands out data in reads of 1 to 300 bytes.
type randomReads struct {
	data []byte
	rng  *rand.Rand
}

func (r *randomReads) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.data), 1+r.rng.IntN(300))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// Every byte read comes out again, in order, whatever the bytes and the
// framing: random data (every byte value), small limits, random reads.
func TestLosslessRandom(t *testing.T) {
	specs := []string{"raw", "line", "crlf", "delim:END", "delim:\\r\\n\\r\\n", "len:u8", "len:u16be", "len:varint", "fixed:7", "slip", "cobs"}
	for _, spec := range specs {
		t.Run(spec, func(t *testing.T) {
			f := mustParse(t, spec)
			for seed := range uint64(20) {
				rng := rand.New(rand.NewPCG(seed, 9))
				data := make([]byte, 1+rng.IntN(40000))
				for i := range data {
					data[i] = byte(rng.UintN(256))
					if rng.IntN(8) == 0 { // more terminators than chance gives
						data[i] = "\r\n\xc0\xdb\x00E"[rng.IntN(6)]
					}
				}
				max := []int{16, 100, 1000, 1 << 20}[seed%4]
				got := wireOf(readLossless(t, &randomReads{data, rng}, f, max))
				if got != string(data) {
					t.Fatalf("seed %d, max %d: %d bytes in, %d out; first difference at %d", seed, max, len(data), len(got), firstDiff(got, string(data)))
				}
			}
		})
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestLosslessWire(t *testing.T) {
	tests := []struct {
		name, spec, in string
		want           []piece
	}{
		{"crlf line", "line", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", []piece{
			{"GET / HTTP/1.1", "GET / HTTP/1.1\r\n", nil}, {"Host: x", "Host: x\r\n", nil}, {"", "\r\n", nil}}},
		{"tail", "line", "a\nb\r", []piece{{"a", "a\n", nil}, {"b", "b\r", nil}}},
		{"crlf tail", "crlf", "a\r\nb", []piece{{"a", "a\r\n", nil}, {"b", "b", nil}}},
		{"slip filler", "slip", "\xc0\xc0a\xc0\xc0\xc0b\xdb\xdcc\xc0\xc0", []piece{
			{"a", "\xc0\xc0a\xc0", nil}, {"b\xc0c", "\xc0\xc0b\xdb\xdcc\xc0", nil}, {"\xc0", "\xc0", ErrTruncated}}},
		{"slip bad escape", "slip", "a\xdbxb\xc0c\xc0", []piece{{"a\xdbxb\xc0", "a\xdbxb\xc0", errors.New("slip")}, {"c", "c\xc0", nil}}},
		{"cobs bad block", "cobs", "\x05a\x00\x02b\x00", []piece{{"\x05a\x00", "\x05a\x00", errors.New("cobs")}, {"b", "\x02b\x00", nil}}},
		{"len truncated", "len:u16be", "\x00\x01a\x00\x05ab", []piece{{"a", "\x00\x01a", nil}, {"\x00\x05ab", "\x00\x05ab", ErrTruncated}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, src := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				got := readLossless(t, src, mustParse(t, tt.spec), 100)
				if len(got) != len(tt.want) {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
				for i, g := range got {
					w := tt.want[i]
					if g.msg != w.msg || g.wire != w.wire || (g.unframed == nil) != (w.unframed == nil) {
						t.Fatalf("piece %d: got %v, want %v", i, g, w)
					}
					if w.unframed != nil && !errors.Is(g.unframed, w.unframed) && !strings.Contains(g.unframed.Error(), w.unframed.Error()) {
						t.Fatalf("piece %d: reason %v, want %v", i, g.unframed, w.unframed)
					}
				}
			}
		})
	}
}

// A frame over the limit is passed on in pieces no larger than the limit,
// and the frames after it are messages again.
func TestLosslessOverLimit(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 5000)
	for _, spec := range []string{"line", "delim:END", "slip", "len:u16be"} {
		t.Run(spec, func(t *testing.T) {
			f := mustParse(t, spec)
			var in []byte
			in, _ = f.Encode(in, []byte("before"))
			in, _ = f.Encode(in, big)
			in, _ = f.Encode(in, []byte("after"))
			got := readLossless(t, bytes.NewReader(in), f, 100)
			if wireOf(got) != string(in) {
				t.Fatal("bytes changed")
			}
			if got[0].msg != "before" || got[len(got)-1].msg != "after" || got[len(got)-1].unframed != nil {
				t.Fatalf("first %v, last %v", got[0], got[len(got)-1])
			}
			for _, p := range got[1 : len(got)-1] {
				if !errors.Is(p.unframed, ErrTooLarge) {
					t.Fatalf("middle piece %q is not an over-limit chunk", p.wire)
				}
				if len(p.wire) > 64<<10 {
					t.Fatalf("chunk of %d bytes", len(p.wire))
				}
			}
		})
	}
}

func (p piece) String() string {
	return "{msg " + strconvQuote(p.msg) + " wire " + strconvQuote(p.wire) + " unframed " + errString(p.unframed) + "}"
}

func strconvQuote(s string) string { return strconv.Quote(s) }

func errString(err error) string {
	if err == nil {
		return "no"
	}
	return err.Error()
}

// FuzzLossless: whatever the bytes and the framing, a Lossless Reader gives
// every byte back, in order, read whole or a byte at a time.
func FuzzLossless(f *testing.F) {
	f.Add([]byte("a\r\nb\rEND\xc0\xdbx\x00\x05tail"), uint8(3))
	f.Add([]byte("\x00\x05ab"), uint8(4))
	specs := []string{"line", "crlf", "delim:END", "len:u16be", "len:varint", "fixed:3", "slip", "cobs"}
	f.Fuzz(func(t *testing.T, data []byte, pick uint8) {
		fr := mustParse(t, specs[int(pick)%len(specs)])
		for _, src := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data))} {
			if got := wireOf(readLossless(t, src, fr, 8)); got != string(data) {
				t.Fatalf("%s: %q in, %q out", Name(fr), data, got)
			}
		}
	})
}
