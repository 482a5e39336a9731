package coap

import (
	"bytes"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
)

func TestRoundTripAndCritical(t *testing.T) {
	m := &Message{Type: CON, Code: codes.GET, MessageID: 0x1234, Token: []byte{1, 2}, Options: message.Options{}}
	buf := make([]byte, 64)
	m.Options, _, _ = m.Options.SetPath(buf, "/a/b")
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 7252 3: ver 1, CON, token length 2; GET; message id; token; Uri-Path a, b
	want := []byte{0x42, 0x01, 0x12, 0x34, 1, 2, 0xb1, 'a', 0x01, 'b'}
	if !bytes.Equal(b, want) {
		t.Fatalf("% x, want % x", b, want)
	}
	r, err := Decode(b)
	if err != nil || r.MessageID != 0x1234 || r.Code != codes.GET {
		t.Fatalf("%+v %v", r, err)
	}
	if _, bad := UnknownCritical(r); bad {
		t.Fatal("Uri-Path taken for unknown")
	}
	r.Options = r.Options.Add(message.Option{ID: 65001, Value: []byte("x")})
	if id, bad := UnknownCritical(r); !bad || id != 65001 {
		t.Fatal("option 65001 (critical, unknown) not found")
	}
	r.Options = message.Options{{ID: 65000, Value: []byte("x")}}
	if _, bad := UnknownCritical(r); bad {
		t.Fatal("an elective option taken for critical")
	}
	if _, err := Decode([]byte{0x42, 1}); err == nil {
		t.Fatal("a truncated message decoded")
	}
}

func TestCodesAndBlocks(t *testing.T) {
	for _, c := range []struct {
		in   string
		want codes.Code
	}{{"2.05", codes.Content}, {"404", codes.NotFound}, {"4.02", codes.BadOption}} {
		if got, err := ParseCode(c.in); err != nil || got != c.want || CodeString(got) != CodeString(c.want) {
			t.Errorf("ParseCode(%q) = %v, %v", c.in, got, err)
		}
	}
	if _, err := ParseCode("9.99"); err == nil {
		t.Error("9.99 taken")
	}
	if num, more, size := BlockOf(Block(5, true, 6)); num != 5 || !more || size != 1024 {
		t.Errorf("block %d %v %d", num, more, size)
	}
}

// FuzzDecode: any datagram decodes or fails, never panics; what decodes
// encodes again.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x42, 0x01, 0x12, 0x34, 1, 2, 0xb1, 'a', 0x01, 'b'})
	f.Add([]byte{0x60, 0x45, 0, 1, 0xff, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		UnknownCritical(m)
		Encode(m)
	})
}
