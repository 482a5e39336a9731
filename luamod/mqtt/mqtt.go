// Package mqtt is the packet codec behind the Lua mqtt module (the client
// itself lives in package script, which owns the device scheduler it waits
// on): framing a byte stream into MQTT packets, decoding and encoding them
// for MQTT 3.1.1 and 5, and naming reason codes.
//
// The packets are mochi-mqtt/server/v2's packets package, not a codec of our
// own. It was chosen over eclipse/paho.golang's packets because paho's speaks
// MQTT 5 only, and devices in the field mostly speak 3.1.1. mochi's decodes
// from a byte slice (no io.Reader per packet), imports only the standard
// library and its own mempool, and links none of the broker: the binary
// grows by about 150 KiB and `wirecat version` starts no slower (it has no
// init work beyond a few maps). Decoded strings alias the packet's bytes, so
// a packet's buffer must not be reused while the packet is in use.
package mqtt

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Packet types, as in the fixed header.
const (
	Connect     = packets.Connect
	Connack     = packets.Connack
	Publish     = packets.Publish
	Puback      = packets.Puback
	Pubrec      = packets.Pubrec
	Pubrel      = packets.Pubrel
	Pubcomp     = packets.Pubcomp
	Subscribe   = packets.Subscribe
	Suback      = packets.Suback
	Unsubscribe = packets.Unsubscribe
	Unsuback    = packets.Unsuback
	Pingreq     = packets.Pingreq
	Pingresp    = packets.Pingresp
	Disconnect  = packets.Disconnect
	Auth        = packets.Auth
)

// Packet is a decoded MQTT packet.
type Packet = packets.Packet

// Frame returns the length of the whole packet at the start of b, or 0 when
// more bytes are needed. A malformed remaining length, or a packet longer
// than max bytes, is an error: the stream cannot be read on.
func Frame(b []byte, max int) (int, error) {
	if len(b) < 2 {
		return 0, nil
	}
	n, mul := 0, 1
	for i := 1; ; i++ {
		if i > 4 {
			return 0, errors.New("mqtt: malformed remaining length (more than 4 bytes)")
		}
		if i >= len(b) {
			return 0, nil
		}
		n += int(b[i]&0x7f) * mul
		mul <<= 7
		if b[i]&0x80 == 0 {
			total := i + 1 + n
			if total > max {
				return 0, fmt.Errorf("mqtt: a %d-byte packet, over the maximum of %d", total, max)
			}
			if len(b) < total {
				return 0, nil
			}
			return total, nil
		}
	}
}

// Decode decodes the whole packet b (as cut by Frame) for protocol version
// 4 (3.1.1) or 5. The packet's strings and payload alias b.
func Decode(b []byte, version byte) (*Packet, error) {
	n, err := Frame(b, len(b))
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, errors.New("mqtt: truncated packet")
	}
	pk := &Packet{ProtocolVersion: version}
	if err := pk.FixedHeader.Decode(b[0]); err != nil {
		return nil, fmt.Errorf("mqtt: %s packet: %w", TypeName(b[0]>>4), err)
	}
	hdr := 2
	for b[hdr-1]&0x80 != 0 {
		hdr++
	}
	body := b[hdr:]
	pk.FixedHeader.Remaining = len(body)
	var derr error
	switch pk.FixedHeader.Type {
	case Connect:
		derr = pk.ConnectDecode(body)
	case Connack:
		derr = pk.ConnackDecode(body)
	case Publish:
		derr = pk.PublishDecode(body)
	case Puback, Pubrec, Pubrel, Pubcomp:
		if len(body) < 2 {
			derr = errors.New("no packet identifier")
		} else {
			derr = pk.PubackDecode(body) // the four share one layout
		}
	case Subscribe:
		derr = pk.SubscribeDecode(body)
	case Suback:
		derr = pk.SubackDecode(body)
	case Unsubscribe:
		derr = pk.UnsubscribeDecode(body)
	case Unsuback:
		derr = pk.UnsubackDecode(body)
	case Pingreq, Pingresp:
	case Disconnect:
		derr = pk.DisconnectDecode(body)
	case Auth:
		derr = pk.AuthDecode(body)
	default:
		derr = errors.New("reserved packet type 0")
	}
	if derr != nil {
		return nil, fmt.Errorf("mqtt: malformed %s packet: %w", TypeName(pk.FixedHeader.Type), derr)
	}
	return pk, nil
}

// Encode returns the wire bytes of pk, whose FixedHeader.Type says what it is.
func Encode(pk *Packet) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case Connect:
		err = pk.ConnectEncode(&buf)
	case Connack:
		err = pk.ConnackEncode(&buf)
	case Publish:
		err = pk.PublishEncode(&buf)
	case Puback:
		err = pk.PubackEncode(&buf)
	case Pubrec:
		err = pk.PubrecEncode(&buf)
	case Pubrel:
		pk.FixedHeader.Qos = 1 // the flags MQTT requires of PUBREL
		err = pk.PubrelEncode(&buf)
	case Pubcomp:
		err = pk.PubcompEncode(&buf)
	case Subscribe:
		pk.FixedHeader.Qos = 1
		err = pk.SubscribeEncode(&buf)
	case Suback:
		err = pk.SubackEncode(&buf)
	case Unsubscribe:
		pk.FixedHeader.Qos = 1
		err = pk.UnsubscribeEncode(&buf)
	case Unsuback:
		err = pk.UnsubackEncode(&buf)
	case Pingreq:
		err = pk.PingreqEncode(&buf)
	case Pingresp:
		err = pk.PingrespEncode(&buf)
	case Disconnect:
		err = pk.DisconnectEncode(&buf)
	case Auth:
		err = pk.AuthEncode(&buf)
	default:
		err = fmt.Errorf("unknown packet type %d", pk.FixedHeader.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("mqtt: encode %s: %w", TypeName(pk.FixedHeader.Type), err)
	}
	return buf.Bytes(), nil
}

func typeName(t byte) string {
	if n, ok := packets.PacketNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type %d", t)
}

// TypeName is a packet type's name: "PUBACK".
func TypeName(t byte) string {
	n := typeName(t)
	b := []byte(n)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// connack311 are MQTT 3.1.1's CONNACK return codes.
var connack311 = map[byte]string{
	1: "unacceptable protocol version",
	2: "identifier rejected",
	3: "server unavailable",
	4: "bad user name or password",
	5: "not authorized",
}

// reasons are MQTT 5's reason codes (section 2.4); those under 0x80 that
// only mean success are named by the packet they answer.
var reasons = map[byte]string{
	0x00: "success", 0x01: "granted QoS 1", 0x02: "granted QoS 2", 0x04: "disconnect with will message",
	0x10: "no matching subscribers", 0x11: "no subscription existed", 0x18: "continue authentication",
	0x19: "re-authenticate", 0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
	0x83: "implementation specific error", 0x84: "unsupported protocol version",
	0x85: "client identifier not valid", 0x86: "bad user name or password", 0x87: "not authorized",
	0x88: "server unavailable", 0x89: "server busy", 0x8A: "banned", 0x8B: "server shutting down",
	0x8C: "bad authentication method", 0x8D: "keep alive timeout", 0x8E: "session taken over",
	0x8F: "topic filter invalid", 0x90: "topic name invalid", 0x91: "packet identifier in use",
	0x92: "packet identifier not found", 0x93: "receive maximum exceeded", 0x94: "topic alias invalid",
	0x95: "packet too large", 0x96: "message rate too high", 0x97: "quota exceeded",
	0x98: "administrative action", 0x99: "payload format invalid", 0x9A: "retain not supported",
	0x9B: "QoS not supported", 0x9C: "use another server", 0x9D: "server moved",
	0x9E: "shared subscriptions not supported", 0x9F: "connection rate exceeded",
	0xA0: "maximum connect time", 0xA1: "subscription identifiers not supported",
	0xA2: "wildcard subscriptions not supported",
}

// Reason names a reason code as "not authorized (0x87)". A 3.1.1 CONNACK's
// return codes have their own meanings; a 3.1.1 SUBACK fails with 0x80.
func Reason(version, ptype, code byte) string {
	name, ok := "", false
	if version < 5 && ptype == Connack {
		name, ok = connack311[code]
	} else if version < 5 && ptype == Suback && code == 0x80 {
		name, ok = "failure", true
	} else {
		name, ok = reasons[code]
	}
	if !ok {
		name = "unknown reason"
	}
	return fmt.Sprintf("%s (0x%02x)", name, code)
}

// Failed reports whether a reason code (a 3.1.1 CONNACK return code, or an
// MQTT 5 reason code) is a failure.
func Failed(version, ptype, code byte) bool {
	if version < 5 && ptype == Connack {
		return code != 0
	}
	return code >= 0x80
}

// Match reports whether topic matches the subscription filter, with MQTT's
// wildcards: + for one level, # for the rest. Topics starting with $ match
// only filters that name them.
func Match(filter, topic string) bool {
	if len(topic) > 0 && topic[0] == '$' && (len(filter) == 0 || filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		if filter == "#" {
			return true
		}
		fl, frest, fmore := cut(filter)
		tl, trest, tmore := cut(topic)
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore || !tmore {
			// "a/#" also matches "a"
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}

func cut(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// FixedHeader is a packet's first byte and length.
type FixedHeader = packets.FixedHeader

// Subscription is one filter of a SUBSCRIBE or UNSUBSCRIBE.
type Subscription = packets.Subscription

// AppendPublish appends a PUBLISH packet to dst without building a Packet:
// the hot path of a device that publishes. An MQTT 5 PUBLISH has an empty
// property list. id is used only when qos > 0.
func AppendPublish(dst []byte, version, qos byte, retain bool, id uint16, topic string, payload []byte) []byte {
	n := 2 + len(topic) + len(payload)
	if qos > 0 {
		n += 2
	}
	if version == 5 {
		n++
	}
	h := byte(Publish<<4) | qos<<1
	if retain {
		h |= 1
	}
	dst = append(dst, h)
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			b |= 0x80
		}
		dst = append(dst, b)
		if n == 0 {
			break
		}
	}
	dst = append(dst, byte(len(topic)>>8), byte(len(topic)))
	dst = append(dst, topic...)
	if qos > 0 {
		dst = append(dst, byte(id>>8), byte(id))
	}
	if version == 5 {
		dst = append(dst, 0)
	}
	return append(dst, payload...)
}

// AppendAck appends a PUBACK, PUBREC, PUBREL or PUBCOMP for packet id with
// reason code 0 (which MQTT 5 lets a 2-byte body mean).
func AppendAck(dst []byte, typ byte, id uint16) []byte {
	h := typ << 4
	if typ == Pubrel {
		h |= 2
	}
	return append(dst, h, 2, byte(id>>8), byte(id))
}

// QuickAck reads a whole packet b that is a PUBACK, PUBREC, PUBREL or
// PUBCOMP with only its identifier (the usual case, success), without
// decoding a Packet; ok is false for anything else, which goes to Decode.
func QuickAck(b []byte) (typ byte, id uint16, ok bool) {
	if len(b) != 4 || b[1] != 2 {
		return 0, 0, false
	}
	typ = b[0] >> 4
	flags := b[0] & 0x0f
	switch {
	case typ == Puback || typ == Pubrec || typ == Pubcomp:
		ok = flags == 0
	case typ == Pubrel:
		ok = flags == 2
	}
	return typ, uint16(b[2])<<8 | uint16(b[3]), ok
}
