package pipe

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/wirecat-dev/wirecat/proto"
)

func framer(t *testing.T, spec string) proto.Framer {
	t.Helper()
	f, err := proto.Parse(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

type msg struct{ payload, wire string }

// readAll drains an Input, copying each message (they are valid until the
// next call only).
func readAll(t *testing.T, in Source) ([]msg, error) {
	t.Helper()
	var out []msg
	for i := 0; i < 1e6; i++ {
		m, err := in.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, msg{string(m.Payload), string(m.Wire)})
	}
	t.Fatal("the input never ended")
	return nil, nil
}

func TestInputModes(t *testing.T) {
	cases := []struct {
		name, mode, frame, in string
		want                  []msg
	}{
		{"lines", "lines", "line", "a\nbb\n", []msg{{"a", "a\n"}, {"bb", "bb\n"}}},
		{"crlf stripped", "lines", "line", "a\r\nb\r\n", []msg{{"a", "a\n"}, {"b", "b\n"}}},
		{"last line without newline", "lines", "line", "a\nlast", []msg{{"a", "a\n"}, {"last", "last\n"}}},
		{"empty lines are messages", "lines", "line", "\n\n", []msg{{"", "\n"}, {"", "\n"}}},
		{"lines encoded with the framing", "lines", "len:u8", "hi\n", []msg{{"hi", "\x02hi"}}},
		{"lines to crlf", "lines", "crlf", "x\n", []msg{{"x", "x\r\n"}}},
		{"lines to delim", "lines", `delim:END`, "x\ny\n", []msg{{"x", "xEND"}, {"y", "yEND"}}},
		{"hex spaced", "hex", "raw", "01 02 ff\n", []msg{{"\x01\x02\xff", "\x01\x02\xff"}}},
		{"hex packed, crlf, blank lines skipped", "hex", "raw", "0102ff\r\n\n  \n0a\n", []msg{{"\x01\x02\xff", "\x01\x02\xff"}, {"\n", "\n"}}},
		{"hex with a framing", "hex", "len:u16be", "41 42\n", []msg{{"AB", "\x00\x02AB"}}},
		{"hex with 0x", "hex", "raw", "0x01 0xff\n", []msg{{"\x01\xff", "\x01\xff"}}},
		{"nothing", "lines", "line", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, err := NewInput(strings.NewReader(c.in), c.mode, framer(t, c.frame))
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAll(t, in)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("message %d = %q, want %q", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestInputRawPassesBytesThrough(t *testing.T) {
	data := bytes.Repeat([]byte("raw\x00bytes\n"), 100000) // ~1 MB, several reads
	// Raw ignores the framing: the user already framed the bytes.
	in, err := NewInput(iotest.HalfReader(bytes.NewReader(data)), "raw", framer(t, "len:u8"))
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for {
		m, err := in.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Payload, m.Wire) {
			t.Fatal("raw payload and wire differ")
		}
		got = append(got, m.Wire...)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, want %d", len(got), len(data))
	}
}

func TestInputLongLines(t *testing.T) {
	// Lines longer than the 256 KiB read buffer arrive whole, in one piece.
	long := strings.Repeat("x", 300<<10)
	longer := strings.Repeat("y", 1<<20+7)
	in, err := NewInput(iotest.OneByteReader(strings.NewReader("short\n"+long+"\n"+longer+"\r\nend")), "lines", framer(t, "line"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0].payload != "short" || got[1].payload != long || got[2].payload != longer || got[3].payload != "end" {
		lens := []int{}
		for _, m := range got {
			lens = append(lens, len(m.payload))
		}
		t.Fatalf("got %d messages of %v bytes", len(got), lens)
	}
	if got[1].wire != long+"\n" {
		t.Fatal("long line badly encoded")
	}
}

func TestInputErrors(t *testing.T) {
	in, _ := NewInput(strings.NewReader("01\n\nzz\n"), "hex", framer(t, "raw"))
	if _, err := in.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := in.Next()
	if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "'z'") {
		t.Fatalf("bad hex: %v (want the line number and the character)", err)
	}

	in, _ = NewInput(strings.NewReader("abc\n"), "hex", framer(t, "raw"))
	if _, err := in.Next(); err == nil || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "odd") {
		t.Fatalf("odd digits: %v", err)
	}

	// A framing that refuses the message names the line too.
	in, _ = NewInput(strings.NewReader("abcd\nabc\n"), "lines", framer(t, "fixed:4"))
	if _, err := in.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Next(); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("encode error: %v", err)
	}

	if _, err := NewInput(strings.NewReader(""), "json", framer(t, "raw")); err == nil || !strings.Contains(err.Error(), "raw, lines, hex") {
		t.Fatalf("unknown mode: %v", err)
	}

	// A read error is passed on.
	boom := errors.New("disk on fire")
	in, _ = NewInput(iotest.ErrReader(boom), "lines", framer(t, "line"))
	if _, err := in.Next(); !errors.Is(err, boom) {
		t.Fatalf("read error: %v", err)
	}
	in, _ = NewInput(iotest.ErrReader(boom), "raw", framer(t, "raw"))
	if _, err := in.Next(); !errors.Is(err, boom) {
		t.Fatalf("read error (raw): %v", err)
	}
}

func TestInputBuffered(t *testing.T) {
	in, _ := NewInput(strings.NewReader("a\nb\nc\n"), "lines", framer(t, "line"))
	if _, err := in.Next(); err != nil {
		t.Fatal(err)
	}
	if in.Buffered() != 4 {
		t.Fatalf("Buffered = %d, want 4 (b\\nc\\n)", in.Buffered())
	}
}

func TestMessagesRepeat(t *testing.T) {
	ms := []Message{{Payload: []byte("a"), Wire: []byte("a\n")}, {Payload: []byte("b"), Wire: []byte("b\n")}}
	for _, c := range []struct {
		n    int
		want string
	}{{0, ""}, {1, "ab"}, {3, "ababab"}} {
		got, err := readAll(t, Messages(ms, c.n))
		if err != nil {
			t.Fatal(err)
		}
		var s string
		for _, m := range got {
			s += m.payload
		}
		if s != c.want {
			t.Fatalf("repeat %d: %q, want %q", c.n, s, c.want)
		}
	}
	if got, _ := readAll(t, Messages(nil, 5)); len(got) != 0 {
		t.Fatalf("no messages repeated: %q", got)
	}
}

func TestExpectMet(t *testing.T) {
	cases := []struct {
		x    Expect
		o    Outcome
		want bool
	}{
		{Expect{}, Outcome{}, true},
		{Expect{Replies: 2}, Outcome{Replies: 1}, false},
		{Expect{Replies: 2}, Outcome{Replies: 2}, true},
		{Expect{Replies: 2}, Outcome{Replies: 5}, true},
		{Expect{Until: []byte("OK")}, Outcome{Replies: 3}, false},
		{Expect{Until: []byte("OK")}, Outcome{Found: true}, true},
		{Expect{Replies: 1, Until: []byte("OK")}, Outcome{Replies: 1}, false},
		{Expect{Replies: 1, Until: []byte("OK")}, Outcome{Found: true}, false},
		{Expect{Replies: 1, Until: []byte("OK")}, Outcome{Replies: 1, Found: true}, true},
	}
	for i, c := range cases {
		if got := c.x.Met(c.o); got != c.want {
			t.Errorf("%d: %+v.Met(%+v) = %v, want %v", i, c.x, c.o, got, c.want)
		}
	}
}
