package mqtt

import (
	"bytes"
	"strings"
	"testing"
)

func publish(t testing.TB, v byte, qos byte, id uint16, topic, payload string) []byte {
	pk := &Packet{ProtocolVersion: v, TopicName: topic, Payload: []byte(payload), PacketID: id}
	pk.FixedHeader.Type, pk.FixedHeader.Qos, pk.FixedHeader.Retain = Publish, qos, true
	b, err := Encode(pk)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPublishRoundTrip(t *testing.T) {
	for _, v := range []byte{4, 5} {
		b := publish(t, v, 1, 7, "a/b", "21.5")
		n, err := Frame(append(b, 0xE0), 1<<20)
		if err != nil || n != len(b) {
			t.Fatalf("v%d: Frame = %d, %v; want %d", v, n, err, len(b))
		}
		pk, err := Decode(b, v)
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if pk.TopicName != "a/b" || string(pk.Payload) != "21.5" || pk.PacketID != 7 || pk.FixedHeader.Qos != 1 || !pk.FixedHeader.Retain {
			t.Fatalf("v%d: decoded %+v", v, pk)
		}
	}
	// the exact 3.1.1 bytes: 0x33, length, topic, id, payload
	want := []byte{0x33, 11, 0, 3, 'a', '/', 'b', 0, 7, '2', '1', '.', '5'}
	if got := publish(t, 4, 1, 7, "a/b", "21.5"); !bytes.Equal(got, want) {
		t.Fatalf("encoded % x, want % x", got, want)
	}
}

func TestFrame(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		n    int
		fail string
	}{
		{[]byte{0x30}, 0, ""},
		{[]byte{0x30, 0x80}, 0, ""},
		{[]byte{0x30, 0x02, 0, 0}, 4, ""},
		{[]byte{0x30, 0x80, 0x01}, 0, ""}, // 128 bytes announced
		{[]byte{0x30, 0xff, 0xff, 0xff, 0xff, 1}, 0, "more than 4 bytes"},
		{[]byte{0x30, 0xff, 0xff, 0xff, 0x7f}, 0, "over the maximum"},
	} {
		n, err := Frame(c.in, 1<<20)
		if c.fail != "" {
			if err == nil || !strings.Contains(err.Error(), c.fail) {
				t.Errorf("Frame(% x) = %v, want an error with %q", c.in, err, c.fail)
			}
			continue
		}
		if err != nil || n != c.n {
			t.Errorf("Frame(% x) = %d, %v; want %d", c.in, n, err, c.n)
		}
	}
}

func TestDecodeBad(t *testing.T) {
	for _, b := range [][]byte{
		{0x36, 0x02, 0, 1},           // QoS 3
		{0x40, 0x01, 0},              // PUBACK without its identifier
		{0x00, 0x00},                 // reserved type
		{0x30, 0x05, 0, 9, 'a', 'b'}, // topic longer than the packet
		{0xC1, 0x00},                 // PINGREQ with flags
	} {
		if _, err := Decode(b, 4); err == nil || !strings.HasPrefix(err.Error(), "mqtt: ") {
			t.Errorf("Decode(% x) = %v, want an mqtt: error", b, err)
		}
	}
}

func TestReason(t *testing.T) {
	for _, c := range []struct {
		v, typ, code byte
		want         string
		failed       bool
	}{
		{4, Connack, 5, "not authorized (0x05)", true},
		{5, Connack, 0x87, "not authorized (0x87)", true},
		{5, Puback, 0x10, "no matching subscribers (0x10)", false},
		{4, Suback, 0x80, "failure (0x80)", true},
		{5, Suback, 0x01, "granted QoS 1 (0x01)", false},
		{5, Puback, 0xFE, "unknown reason (0xfe)", true},
	} {
		if got := Reason(c.v, c.typ, c.code); got != c.want || Failed(c.v, c.typ, c.code) != c.failed {
			t.Errorf("Reason(%d, %d, %#x) = %q, failed %v", c.v, c.typ, c.code, got, Failed(c.v, c.typ, c.code))
		}
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		f, t string
		ok   bool
	}{
		{"a/b", "a/b", true}, {"a/+", "a/b", true}, {"a/+", "a/b/c", false}, {"a/#", "a/b/c", true},
		{"a/#", "a", true}, {"#", "a/b", true}, {"#", "$SYS/x", false}, {"+/b", "a/b", true},
		{"a/b", "a/c", false}, {"a", "a/b", false}, {"+", "", true}, {"$SYS/#", "$SYS/x", true},
	} {
		if Match(c.f, c.t) != c.ok {
			t.Errorf("Match(%q, %q) = %v", c.f, c.t, !c.ok)
		}
	}
}

// FuzzDecode: any bytes either decode or fail with an error, never panic.
func FuzzDecode(f *testing.F) {
	f.Add(publish(f, 4, 1, 7, "a/b", "21.5"), byte(4))
	f.Add(publish(f, 5, 2, 9, "x", "y"), byte(5))
	f.Add([]byte{0x20, 0x02, 0, 0}, byte(4))
	f.Add([]byte{0x90, 0x04, 0, 1, 0, 1}, byte(5))
	f.Fuzz(func(t *testing.T, b []byte, v byte) {
		v = 4 + v%2
		n, err := Frame(b, 1<<16)
		if err != nil || n == 0 {
			return
		}
		pk, err := Decode(b[:n], v)
		if err == nil && pk == nil {
			t.Fatal("nil packet without an error")
		}
	})
}

// BenchmarkDecodePublish is issue 13's codec target: ≥ 1M PUBLISH/s.
func BenchmarkDecodePublish(b *testing.B) {
	pkt := publish(b, 4, 1, 7, "wirecat/1/temp", "21.5")
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		n, err := Frame(pkt, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(pkt[:n], 4); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAppendPublishMatchesEncode(t *testing.T) {
	big := strings.Repeat("x", 300) // a two-byte remaining length
	for _, v := range []byte{4, 5} {
		for _, qos := range []byte{0, 1, 2} {
			for _, payload := range []string{"", "21.5", big} {
				pk := &Packet{ProtocolVersion: v, TopicName: "a/b", Payload: []byte(payload), PacketID: 9}
				pk.FixedHeader.Type, pk.FixedHeader.Qos, pk.FixedHeader.Retain = Publish, qos, true
				want, err := Encode(pk)
				if err != nil {
					t.Fatal(err)
				}
				if got := AppendPublish(nil, v, qos, true, 9, "a/b", []byte(payload)); !bytes.Equal(got, want) {
					t.Errorf("v%d qos %d %d bytes: % x, want % x", v, qos, len(payload), got[:8], want[:8])
				}
			}
		}
	}
	for _, typ := range []byte{Puback, Pubrec, Pubrel, Pubcomp} {
		b := AppendAck(nil, typ, 0x1234)
		pk, err := Decode(b, 4)
		if err != nil || pk.PacketID != 0x1234 || pk.FixedHeader.Type != typ {
			t.Errorf("ack %d: %v %+v", typ, err, pk)
		}
		if qt, id, ok := QuickAck(b); !ok || qt != typ || id != 0x1234 {
			t.Errorf("QuickAck(% x) = %d %d %v", b, qt, id, ok)
		}
	}
	if _, _, ok := QuickAck([]byte{0x41, 2, 0, 1}); ok {
		t.Error("QuickAck took a PUBACK with flags")
	}
}
