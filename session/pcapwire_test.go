package session

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// The hand-written frames are byte for byte what gopacket serialises, and
// gopacket reads the capture back.

func gopacketFrame(t *testing.T, s *segment) []byte {
	eth := &layers.Ethernet{SrcMAC: s.smac[:], DstMAC: s.dmac[:]}
	proto := layers.IPProtocolUDP
	if s.tcp {
		proto = layers.IPProtocolTCP
	}
	var ip gopacket.NetworkLayer
	var ipl gopacket.SerializableLayer
	if s.src.Addr().Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		v4 := &layers.IPv4{Version: 4, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: proto,
			SrcIP: s.src.Addr().AsSlice(), DstIP: s.dst.Addr().AsSlice()}
		ip, ipl = v4, v4
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		v6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: s.src.Addr().AsSlice(), DstIP: s.dst.Addr().AsSlice()}
		ip, ipl = v6, v6
	}
	var l4 gopacket.SerializableLayer
	if s.tcp {
		tc := &layers.TCP{SrcPort: layers.TCPPort(s.src.Port()), DstPort: layers.TCPPort(s.dst.Port()), Seq: s.seq, Ack: s.ack, Window: 65535,
			SYN: s.flags&tcpSYN != 0, ACK: s.flags&tcpACK != 0, PSH: s.flags&tcpPSH != 0, FIN: s.flags&tcpFIN != 0}
		tc.SetNetworkLayerForChecksum(ip)
		l4 = tc
	} else {
		u := &layers.UDP{SrcPort: layers.UDPPort(s.src.Port()), DstPort: layers.UDPPort(s.dst.Port())}
		u.SetNetworkLayerForChecksum(ip)
		l4 = u
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ipl, l4, gopacket.Payload(s.payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFramesMatchGopacket(t *testing.T) {
	odd := bytes.Repeat([]byte{0xff, 0x00, 0x7f}, 333)
	for _, s := range []segment{
		{src: netip.MustParseAddrPort("127.0.0.1:49153"), dst: netip.MustParseAddrPort("127.0.0.2:5000"), tcp: true, flags: tcpSYN, seq: 1000},
		{src: netip.MustParseAddrPort("127.0.0.2:5000"), dst: netip.MustParseAddrPort("127.0.0.1:49153"), tcp: true, flags: tcpPSH | tcpACK, seq: 7, ack: 0xfffffff0, payload: []byte("hello\r\n")},
		{src: netip.MustParseAddrPort("[::1]:4000"), dst: netip.MustParseAddrPort("[2001:db8::2]:80"), tcp: true, flags: tcpFIN | tcpACK, payload: odd},
		{src: netip.MustParseAddrPort("10.0.0.1:5005"), dst: netip.MustParseAddrPort("10.0.0.2:53"), payload: []byte("x")},
		{src: netip.MustParseAddrPort("10.0.0.1:5005"), dst: netip.MustParseAddrPort("10.0.0.2:53")},
		{src: netip.MustParseAddrPort("[fe80::1]:1"), dst: netip.MustParseAddrPort("[fe80::2]:2"), payload: odd},
	} {
		s.smac, s.dmac = [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
		got, want := appendFrame(nil, &s), gopacketFrame(t, &s)
		if !bytes.Equal(got, want) {
			t.Errorf("%v → %v tcp=%v: frames differ\n got %x\nwant %x", s.src, s.dst, s.tcp, got, want)
		}
	}
}

func TestNgWriterReadByGopacket(t *testing.T) {
	var out bytes.Buffer
	ng, err := newNgWriter(&out, "wirecat", "wirecat session listen")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 11, 29, 18, 0, 0, 123456789, time.UTC)
	s := segment{src: netip.MustParseAddrPort("127.0.0.1:1"), dst: netip.MustParseAddrPort("127.0.0.2:2"), tcp: true, flags: tcpACK, payload: []byte("abc")}
	frame := appendFrame(nil, &s)
	ng.writePacket(ts, frame, "")
	ng.writePacket(ts.Add(time.Second), frame, "wirecat: reset")
	ng.Flush()
	r, err := pcapgo.NewNgReader(&out, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(data, frame) || !ci.Timestamp.Equal(ts.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("packet %d: %x at %v", i, data, ci.Timestamp)
		}
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v", r.LinkType())
	}
}
