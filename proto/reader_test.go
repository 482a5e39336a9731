package proto

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestMaxFrame: a message of exactly the limit passes, one byte more fails,
// whether the message completes or the stream just keeps coming.
func TestMaxFrame(t *testing.T) {
	const limit = 100
	for _, spec := range append(roundTripSpecs, "fixed:100") {
		f := mustParse(t, spec)
		t.Run(spec, func(t *testing.T) {
			ok, _ := f.Encode(nil, bytes.Repeat([]byte{0xC0}, limit))
			over, _ := f.Encode(nil, bytes.Repeat([]byte{0xC0}, limit+1))
			if spec == "fixed:100" {
				over = bytes.Repeat([]byte{0xC0}, limit)
				f = mustParse(t, "fixed:101")
			}
			rd := NewReader(bytes.NewReader(append(bytes.Clone(ok), ok...)), mustParse(t, spec), limit)
			for range 2 {
				if msg, err := rd.Next(); err != nil || len(msg) != limit {
					t.Fatalf("message at the limit: %d bytes, %v", len(msg), err)
				}
			}
			for name, r := range readers(over, 1) {
				t.Run(name, func(t *testing.T) {
					rd := NewReader(r, f, limit)
					_, err := rd.Next()
					if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "message larger than --max-frame (100B)") {
						t.Fatalf("err = %v, want ErrTooLarge", err)
					}
					if _, err2 := rd.Next(); err2 != err {
						t.Fatalf("error not sticky: then %v", err2)
					}
				})
			}
			msgs, err := SplitDatagram(f, over, limit)
			if !errors.Is(err, ErrTooLarge) || len(msgs) != 0 {
				t.Fatalf("SplitDatagram = %q, %v; want ErrTooLarge", msgs, err)
			}
		})
	}
}

// endless is a stream that never ends and never holds a terminator.
type endless struct{ read int }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	e.read += len(p)
	return len(p), nil
}

// TestMaxFrameUnterminated: a stream with no terminator stops at the limit
// instead of filling memory.
func TestMaxFrameUnterminated(t *testing.T) {
	for _, spec := range []string{"line", "crlf", "delim:END", "slip", "cobs"} {
		t.Run(spec, func(t *testing.T) {
			src := &endless{}
			_, err := NewReader(src, mustParse(t, spec), 1<<20).Next()
			if !errors.Is(err, ErrTooLarge) || err.Error() != "message larger than --max-frame (1MiB)" {
				t.Fatalf("err = %v", err)
			}
			if src.read > 3<<20 {
				t.Fatalf("read %d bytes before giving up", src.read)
			}
		})
	}
}

// TestMaxFrameDeclared: a length prefix over the limit fails before the
// payload is read.
func TestMaxFrameDeclared(t *testing.T) {
	tests := []struct{ spec, prefix, declared string }{
		{"len:u32be", "\x40\x00\x00\x00", "1GiB"},
		{"len:u32le", "\x00\x00\x00\x40", "1GiB"},
		{"len:u16be", "\x04\x01", "1KiB"},
		{"len:varint", "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", "8192PiB"},
		{"fixed:2000", "a", "2KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			r := io.MultiReader(strings.NewReader(tt.prefix), iotest.ErrReader(errors.New("read past the prefix")))
			_, err := NewReader(iotest.OneByteReader(r), mustParse(t, tt.spec), 1024).Next()
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "declares "+tt.declared) {
				t.Fatalf("err = %v, want ErrTooLarge declaring %s", err, tt.declared)
			}
		})
	}
}

func TestTruncated(t *testing.T) {
	tests := []struct {
		spec, in string
		pending  int
	}{
		{"len:u16be", "\x00\x05ab", 4},
		{"len:u16be", "\x00", 1},
		{"len:varint", "\x01a\x80", 1},
		{"fixed:4", "abcdef", 2},
		{"slip", "\xc0abc", 3},
		{"cobs", "\x02a\x00\x03", 1},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			f := mustParse(t, tt.spec)
			for name, r := range readers([]byte(tt.in), 1) {
				t.Run(name, func(t *testing.T) {
					rd := NewReader(r, f, 0)
					var err error
					for err == nil {
						_, err = rd.Next()
					}
					want := "truncated message at end of stream: " + itoa(tt.pending) + " bytes pending"
					if !errors.Is(err, ErrTruncated) || err.Error() != want {
						t.Fatalf("err = %v, want %q", err, want)
					}
					if _, err2 := rd.Next(); err2 != err {
						t.Fatalf("error not sticky: then %v", err2)
					}
				})
			}
			_, err := SplitDatagram(f, []byte(tt.in), 0)
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("SplitDatagram err = %v", err)
			}
		})
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ spec, in, want string }{
		{"slip", "\xc0ok\xc0ab\xdbA\xc0", "slip: invalid escape 0xdb 0x41"},
		{"slip", "\xc0ok\xc0ab\xdb\xc0", "slip: frame ends inside an escape"},
		{"cobs", "\x02k\x00\x05ab\x00", "cobs: block of 4 bytes at offset 0 overruns the 3-byte frame"},
		{"cobs", "\x02k\x00\x01\x03a\x00", "cobs: block of 2 bytes at offset 1 overruns"},
		{"len:varint", "\x01k\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", "len:varint: length prefix overflows 64 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"/"+tt.want, func(t *testing.T) {
			f := mustParse(t, tt.spec)
			for name, r := range readers([]byte(tt.in), 1) {
				t.Run(name, func(t *testing.T) {
					rd := NewReader(r, f, 0)
					if msg, err := rd.Next(); err != nil || string(msg) != "k" && string(msg) != "ok" {
						t.Fatalf("first message = %q, %v", msg, err)
					}
					_, err := rd.Next()
					if err == nil || !strings.Contains(err.Error(), tt.want) {
						t.Fatalf("err = %v, want %q", err, tt.want)
					}
				})
			}
			msgs, err := SplitDatagram(f, []byte(tt.in), 0)
			if len(msgs) != 1 || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("SplitDatagram = %q, %v", msgs, err)
			}
		})
	}
	// A bad frame is reported before anything is rewritten.
	in := []byte("a\xdb\xdc\xdbx\xc0")
	if _, _, err := mustParse(t, "slip").Decode(in); err == nil || string(in) != "a\xdb\xdc\xdbx\xc0" {
		t.Fatalf("bad slip frame: %v, buffer now %q", err, in)
	}
}

// dataThenErr returns its data and an error in the same Read.
type dataThenErr struct {
	data []byte
	err  error
}

func (d *dataThenErr) Read(p []byte) (int, error) {
	if len(d.data) == 0 {
		return 0, errors.New("read after error")
	}
	n := copy(p, d.data)
	d.data = d.data[n:]
	if len(d.data) == 0 {
		return n, d.err
	}
	return n, nil
}

func TestReadDataAndError(t *testing.T) {
	reset := errors.New("connection reset by peer")
	for _, spec := range []string{"raw", "line", "len:u8"} {
		t.Run(spec, func(t *testing.T) {
			f := mustParse(t, spec)
			var wire []byte
			wire, _ = f.Encode(wire, []byte("one"))
			wire, _ = f.Encode(wire, []byte("two"))
			rd := NewReader(&dataThenErr{wire, reset}, f, 0)
			var got []string
			var err error
			for {
				var msg []byte
				if msg, err = rd.Next(); err != nil {
					break
				}
				got = append(got, string(msg))
			}
			want := "one|two"
			if spec == "raw" {
				want = string(wire) // raw: one read, one message
			}
			if err != reset || strings.Join(got, "|") != want {
				t.Fatalf("got %q, %v; want %q then the error", got, err, want)
			}
			if _, err2 := rd.Next(); err2 != reset {
				t.Fatalf("then %v, want the error again", err2)
			}
		})
	}
}

// zeroReader returns 0, nil forever.
type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestNoProgress(t *testing.T) {
	for _, f := range []Framer{Raw, mustParse(t, "line")} {
		if _, err := NewReader(zeroReader{}, f, 0).Next(); err != io.ErrNoProgress {
			t.Fatalf("%s: err = %v", Name(f), err)
		}
	}
}

// badFramer claims more bytes than it was given.
type badFramer struct{ rawFramer }

func (badFramer) Decode(buf []byte) ([]byte, int, error) { return buf, len(buf) + 1, nil }

func TestBadFramer(t *testing.T) {
	_, err := NewReader(strings.NewReader("abc"), badFramer{}, 0).Next()
	if err == nil || !strings.Contains(err.Error(), "used 4 of 3 bytes") {
		t.Fatalf("err = %v", err)
	}
	if _, err := SplitDatagram(badFramer{}, []byte("abc"), 0); err == nil {
		t.Fatal("SplitDatagram: no error")
	}
}

func TestBuffered(t *testing.T) {
	rd := NewReader(strings.NewReader("a\nbc\nde"), mustParse(t, "line"), 0)
	if msg, _ := rd.Next(); string(msg) != "a" || rd.Buffered() != 5 {
		t.Fatalf("Next = %q, Buffered = %d", msg, rd.Buffered())
	}
}

func TestSplitDatagram(t *testing.T) {
	tests := []struct {
		spec, in string
		want     []string
	}{
		{"raw", "a\nb", []string{"a\nb"}},
		{"raw", "", []string{""}},
		{"line", "a\nb\n", []string{"a", "b"}},
		{"line", "", nil},
		{"len:u8", "\x01a\x00\x02bc", []string{"a", "", "bc"}},
		{"slip", "\xc0\xc0a\xc0\xc0", []string{"a"}},
		{"cobs", "\x00\x02a\x00", []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"/"+tt.in, func(t *testing.T) {
			var f Framer
			if tt.spec != "raw" {
				f = mustParse(t, tt.spec)
			}
			msgs, err := SplitDatagram(f, []byte(tt.in), 0)
			got := make([]string, len(msgs))
			for i, m := range msgs {
				got[i] = string(m)
			}
			if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := SplitDatagram(nil, make([]byte, 11), 10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("raw over the limit: %v", err)
	}
}
