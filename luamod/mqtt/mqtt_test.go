package mqtt

import (
	"bytes"
	"strings"
	"testing"
)

func publish(t testing.TB, v byte, qos byte, id uint16, topic, payload string) []byte {
	return AppendPublish(nil, v, qos, true, id, topic, []byte(payload))
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

func TestPublishLayouts(t *testing.T) {
	big := strings.Repeat("x", 300) // a two-byte remaining length
	for _, v := range []byte{4, 5} {
		for _, qos := range []byte{0, 1, 2} {
			for _, payload := range []string{"", "21.5", big} {
				// the layout of MQTT 3.3: header, remaining length, topic,
				// [id], [v5: empty properties], payload
				body := []byte{0, 3, 'a', '/', 'b'}
				if qos > 0 {
					body = append(body, 0, 9)
				}
				if v == 5 {
					body = append(body, 0)
				}
				body = append(body, payload...)
				want := appendVarint([]byte{0x31 | qos<<1}, len(body))
				want = append(want, body...)
				got := AppendPublish(nil, v, qos, true, 9, "a/b", []byte(payload))
				if !bytes.Equal(got, want) {
					t.Errorf("v%d qos %d %d bytes: % x, want % x", v, qos, len(payload), got[:8], want[:8])
				}
				pk, err := Decode(got, v)
				if err != nil || pk.TopicName != "a/b" || string(pk.Payload) != payload || (qos > 0 && pk.PacketID != 9) {
					t.Errorf("v%d qos %d: decoded %+v, %v", v, qos, pk, err)
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

func TestEncodeClientPackets(t *testing.T) {
	c := &Packet{FixedHeader: FixedHeader{Type: Connect}, ProtocolVersion: 4}
	c.Connect = ConnectParams{ClientIdentifier: "d1", Keepalive: 60, Clean: true, WillFlag: true, WillQos: 1,
		WillRetain: true, WillTopic: "w", WillPayload: []byte("x"), UsernameFlag: true, Username: []byte("u"),
		PasswordFlag: true, Password: []byte("p")}
	got, _ := Encode(c)
	want := []byte{0x10, 26, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xEE, 0, 60, 0, 2, 'd', '1', 0, 1, 'w', 0, 1, 'x', 0, 1, 'u', 0, 1, 'p'}
	if !bytes.Equal(got, want) {
		t.Errorf("CONNECT % x\nwant    % x", got, want)
	}
	c.ProtocolVersion = 5 // empty CONNECT and will property lists
	got, _ = Encode(c)
	if len(got) != len(want)+2 || got[1] != 28 || got[12] != 0 {
		t.Errorf("v5 CONNECT % x", got)
	}
	s := &Packet{FixedHeader: FixedHeader{Type: Subscribe}, ProtocolVersion: 4, PacketID: 1, Filters: []Subscription{{Filter: "a/#", Qos: 2}}}
	if got, _ := Encode(s); !bytes.Equal(got, []byte{0x82, 8, 0, 1, 0, 3, 'a', '/', '#', 2}) {
		t.Errorf("SUBSCRIBE % x", got)
	}
	u := &Packet{FixedHeader: FixedHeader{Type: Unsubscribe}, ProtocolVersion: 5, PacketID: 2, Filters: []Subscription{{Filter: "a"}}}
	if got, _ := Encode(u); !bytes.Equal(got, []byte{0xA2, 6, 0, 2, 0, 0, 1, 'a'}) {
		t.Errorf("UNSUBSCRIBE % x", got)
	}
	d := &Packet{FixedHeader: FixedHeader{Type: Disconnect}, ProtocolVersion: 5, ReasonCode: 4}
	if got, _ := Encode(d); !bytes.Equal(got, []byte{0xE0, 1, 4}) {
		t.Errorf("DISCONNECT % x", got)
	}
	// MQTT 5 answers with reason codes and a reason string
	ack, err := Decode([]byte{0x40, 0x0A, 0, 7, 0x87, 6, 31, 0, 3, 'n', 'o', '!'}, 5)
	if err != nil || ack.PacketID != 7 || ack.ReasonCode != 0x87 || ack.Properties.ReasonString != "no!" {
		t.Errorf("v5 PUBACK: %+v %v", ack, err)
	}
	sub, err := Decode([]byte{0x90, 5, 0, 1, 0, 1, 0x80}, 5)
	if err != nil || len(sub.ReasonCodes) != 2 || sub.ReasonCodes[1] != 0x80 {
		t.Errorf("v5 SUBACK: %+v %v", sub, err)
	}
	ca, err := Decode([]byte{0x20, 3, 1, 0x86, 0}, 5)
	if err != nil || !ca.SessionPresent || ca.ReasonCode != 0x86 {
		t.Errorf("v5 CONNACK: %+v %v", ca, err)
	}
	if _, err := Decode([]byte{0x20, 5, 0, 0, 2, 99, 0}, 5); err == nil || !strings.Contains(err.Error(), "unknown property 99") {
		t.Errorf("an unknown property: %v", err)
	}
}
