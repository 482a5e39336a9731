package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
	"github.com/wirecat-dev/wirecat/session"
)

// collect is an event.Sink that keeps copies.
type collect struct{ evs []event.Event }

func (c *collect) Emit(e *event.Event) error {
	x := *e
	x.Data = append([]byte(nil), e.Data...)
	c.evs = append(c.evs, x)
	return nil
}

func importBytes(t *testing.T, b []byte, opts Options) ([]event.Event, Stats, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := &collect{}
	st, err := Import(r, func(time.Time) (event.Sink, error) { return c, nil }, opts)
	return c.evs, st, err
}

// line renders an event for comparison: kind, conn, side, bytes, error.
func line(e event.Event) string {
	s := fmt.Sprintf("%v conn=%d from=%v", e.Kind, e.Conn, e.From)
	switch e.Kind {
	case event.Open:
		client, server := session.Endpoints(e.Role, e.Local, e.Remote)
		s += fmt.Sprintf(" %s %s→%s", e.Transport, client, server)
	case event.Data:
		s += fmt.Sprintf(" %q", e.Data)
	}
	if e.Err != nil {
		s += " err=" + e.Err.Error()
	}
	return s
}

// A session exported with show --pcap imports back as the same session:
// the same connections, addresses, sides, messages (a 200 KB one
// included), times to the nanosecond, and TCP closes with their error.
// (A UDP open has no packet of its own, nor a UDP close.)
func TestRoundTrip(t *testing.T) {
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var rec bytes.Buffer
	w, err := session.NewWriter(&rec, session.Header{Command: "relay", Frame: "raw", Start: start})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 200000/16)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms)*time.Millisecond + 123456) }
	in := []event.Event{
		{Kind: event.Open, Time: at(1), Conn: 1, Transport: "tcp", Local: "127.0.0.1:1883", Remote: "127.0.0.1:50000", Role: event.Relay},
		{Kind: event.Data, Time: at(2), Conn: 1, From: event.Client, Data: []byte("CONNECT\r\n")},
		{Kind: event.Open, Time: at(3), Conn: 2, Transport: "udp", Local: "[::1]:5683", Remote: "[::1]:40000", Role: event.Relay},
		{Kind: event.Data, Time: at(4), Conn: 2, From: event.Client, Data: []byte{0x40, 1, 0, 0}},
		{Kind: event.Data, Time: at(5), Conn: 2, From: event.Server, Data: []byte{}},
		{Kind: event.Data, Time: at(6), Conn: 1, From: event.Server, Data: big},
		{Kind: event.Data, Time: at(7), Conn: 1, From: event.Server, Data: []byte{0, 1, 2, 255}},
		{Kind: event.Data, Time: at(8), Conn: 1, From: event.Client, Data: []byte("bye\n")},
		{Kind: event.Close, Time: at(9), Conn: 1, From: event.Server, Err: errors.New("cut after 10 bytes (--cut-after)")},
	}
	for i := range in {
		if err := w.Emit(&in[i]); err != nil {
			t.Fatal(err)
		}
	}
	sr, err := session.NewReader(&rec, "rec.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var pcap bytes.Buffer
	if err := session.ExportPcap(sr, &pcap); err != nil {
		t.Fatal(err)
	}
	out, st, err := importBytes(t, pcap.Bytes(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		for _, e := range out {
			t.Log(line(e))
		}
		t.Fatalf("%d events back, want %d", len(out), len(in))
	}
	for i := range in {
		want, got := in[i], out[i]
		if line(got) != line(want) {
			t.Errorf("event %d:\n got %.200s\nwant %.200s", i, line(got), line(want))
		}
		if want.Kind == event.Open && want.Transport == "udp" {
			continue // a UDP open has no packet: it is the first datagram's time
		}
		if !got.Time.Equal(want.Time) {
			t.Errorf("event %d at %v, want %v", i, got.Time, want.Time)
		}
	}
	if st.Conns != 2 || st.Missing != 0 || st.Retransmits != 0 {
		t.Errorf("stats %+v", st)
	}
}

// frames builds a capture with gopacket from TCP/UDP segments.
type frames struct {
	t   *testing.T
	buf bytes.Buffer
	w   *pcapgo.Writer
	now time.Time
}

func newFrames(t *testing.T) *frames {
	f := &frames{t: t, now: time.Unix(1700000000, 0)}
	f.w = pcapgo.NewWriterNanos(&f.buf)
	if err := f.w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	return f
}

var (
	cli = net.IPv4(10, 0, 0, 2)
	srv = net.IPv4(10, 0, 0, 1)
)

// tcp writes a segment from the client (up) or the server.
func (f *frames) tcp(up bool, seq uint32, flags string, payload string) {
	f.t.Helper()
	src, dst, sp, dp := cli, srv, 40001, 1883
	if !up {
		src, dst, sp, dp = srv, cli, 1883, 40001
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: seq, Window: 65535,
		SYN: strings.Contains(flags, "S"), ACK: strings.Contains(flags, "A"), PSH: strings.Contains(flags, "P"),
		FIN: strings.Contains(flags, "F"), RST: strings.Contains(flags, "R")}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		f.t.Fatal(err)
	}
	f.now = f.now.Add(time.Millisecond)
	b := buf.Bytes()
	if err := f.w.WritePacket(gopacket.CaptureInfo{Timestamp: f.now, CaptureLength: len(b), Length: len(b)}, b); err != nil {
		f.t.Fatal(err)
	}
}

const cISN, sISN = 1000, 5000

func (f *frames) handshake() {
	f.tcp(true, cISN, "S", "")
	f.tcp(false, sISN, "SA", "")
	f.tcp(true, cISN+1, "A", "")
}

func dataOf(evs []event.Event) []string {
	var out []string
	for _, e := range evs {
		switch e.Kind {
		case event.Data:
			out = append(out, e.From.String()+":"+string(e.Data))
		case event.Error:
			out = append(out, "error:"+e.Err.Error())
		case event.Close:
			s := "close:" + e.From.String()
			if e.Err != nil {
				s += ":" + e.Err.Error()
			}
			out = append(out, s)
		}
	}
	return out
}

// Retransmissions, overlaps and out-of-order segments come out as the
// stream the receiver read; a segment sent without PSH joins the next one.
func TestReassembly(t *testing.T) {
	f := newFrames(t)
	f.handshake()
	c := uint32(cISN + 1)
	f.tcp(true, c+6, "AP", "world\n")     // ahead of a hole
	f.tcp(true, c, "A", "hello ")         // fills it; no PSH: one message
	f.tcp(true, c, "AP", "hello ")        // retransmitted
	f.tcp(true, c+3, "AP", "lo world\n!") // overlaps, then one new byte
	f.tcp(false, sISN+1, "AP", "ok\n")
	f.tcp(true, c+13, "AF", "")
	f.tcp(false, sISN+4, "AF", "")
	f.tcp(true, c+14, "A", "")
	evs, st, err := importBytes(t, f.buf.Bytes(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(dataOf(evs), "|")
	want := "client:hello world\n|client:!|server:ok\n|close:client"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if st.Retransmits != 1 || st.Conns != 1 || evs[0].Kind != event.Open {
		t.Errorf("stats %+v, first %v", st, evs[0].Kind)
	}
	client, server := session.Endpoints(evs[0].Role, evs[0].Local, evs[0].Remote)
	if client != "10.0.0.2:40001" || server != "10.0.0.1:1883" {
		t.Errorf("client %s server %s", client, server)
	}
}

// A hole the capture never filled is flagged as an error event with its
// size, and the stream carries on after it.
func TestMissingSegment(t *testing.T) {
	f := newFrames(t)
	f.handshake()
	c := uint32(cISN + 1)
	f.tcp(true, c, "AP", "one\n")
	f.tcp(true, c+4+100, "AP", "three\n") // 100 bytes never captured
	f.tcp(false, sISN+1, "R", "")
	evs, st, err := importBytes(t, f.buf.Bytes(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(dataOf(evs), "|")
	want := "client:one\n|error:capture: 100 bytes from the client are missing (not captured)|client:three\n|close:server:connection reset by the server"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if st.Missing != 100 {
		t.Errorf("missing %d", st.Missing)
	}
}

// Without a handshake the client is the side on the higher port, and a
// capture ending mid-conversation has no close.
func TestNoHandshake(t *testing.T) {
	f := newFrames(t)
	f.tcp(false, 77, "AP", "banner\n")
	f.tcp(true, 9, "AP", "hi\n")
	evs, _, err := importBytes(t, f.buf.Bytes(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(dataOf(evs), "|")
	if got != "server:banner\n|client:hi\n" {
		t.Fatalf("got %q", got)
	}
}

func TestFilters(t *testing.T) {
	f := newFrames(t)
	f.handshake()
	f.tcp(true, cISN+1, "AP", "x")
	_, st, err := importBytes(t, f.buf.Bytes(), Options{Ports: []uint16{80}})
	if !errors.Is(err, ErrNoConversation) || !strings.Contains(err.Error(), "left out by --host/--port") {
		t.Fatalf("err %v", err)
	}
	if st.Filtered != 4 {
		t.Errorf("filtered %d", st.Filtered)
	}
	evs, _, err := importBytes(t, f.buf.Bytes(), Options{Ports: []uint16{1883}})
	if err != nil || len(evs) != 2 {
		t.Fatalf("%v %d", err, len(evs))
	}
}

// A truncated capture is imported up to the damage, and the error says
// where it is.
func TestTruncated(t *testing.T) {
	f := newFrames(t)
	f.handshake()
	f.tcp(true, cISN+1, "AP", "complete\n")
	f.tcp(true, cISN+10, "AP", "cut short\n")
	b := f.buf.Bytes()
	evs, _, err := importBytes(t, b[:len(b)-5], Options{})
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Packet != 5 || !strings.Contains(err.Error(), "truncated packet") {
		t.Fatalf("err %v", err)
	}
	if got := strings.Join(dataOf(evs), "|"); got != "client:complete\n" {
		t.Fatalf("got %q", got)
	}
}

func TestNotCapture(t *testing.T) {
	_, err := NewReader(strings.NewReader(`{"wirecat":"session"}`))
	if !errors.Is(err, ErrNotCapture) {
		t.Fatal(err)
	}
	_, err = NewReader(strings.NewReader(""))
	if !errors.Is(err, ErrNotCapture) {
		t.Fatal(err)
	}
}

// A capture with packets but no TCP or UDP says what it held.
func TestNoTCPorUDP(t *testing.T) {
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	w.WriteFileHeader(65536, layers.LinkTypeEthernet)
	arp := make([]byte, 42)
	arp[12], arp[13] = 0x08, 0x06
	w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: 42, Length: 42}, arp)
	_, _, err := importBytes(t, buf.Bytes(), Options{})
	if !errors.Is(err, ErrNoConversation) || !strings.Contains(err.Error(), "1 packets of other protocols") {
		t.Fatal(err)
	}
}

// The pcapng reader reads what gopacket's pcapng writer writes, with its
// timestamps.
func TestPcapngGopacket(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	f := newFrames(t)
	f.handshake()
	pr, _ := pcapgo.NewReader(bytes.NewReader(f.buf.Bytes()))
	var times []time.Time
	for {
		data, ci, err := pr.ReadPacketData()
		if err == io.EOF {
			break
		}
		ci.InterfaceIndex = 0
		times = append(times, ci.Timestamp)
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range times {
		p, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !p.Time.Equal(times[i]) || p.Link != 1 {
			t.Errorf("packet %d at %v link %d, want %v", i, p.Time, p.Link, times[i])
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatal(err)
	}
}

// With a framing, messages are its frames, whatever the segments: a line
// across two segments, two lines in one, and a last line without its
// newline at the FIN.
func TestFramed(t *testing.T) {
	f := newFrames(t)
	f.handshake()
	c := uint32(cISN + 1)
	f.tcp(true, c, "AP", "temp ")
	f.tcp(false, sISN+1, "AP", "ok\n")
	f.tcp(true, c+5, "AP", "21.5\nhum 40\nlast")
	f.tcp(true, c+21, "AF", "")
	f.tcp(false, sISN+4, "AF", "")
	line, err := proto.Parse("line", nil)
	if err != nil {
		t.Fatal(err)
	}
	evs, _, err := importBytes(t, f.buf.Bytes(), Options{Framer: line})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(dataOf(evs), "|")
	if want := "server:ok|client:temp 21.5|client:hum 40|client:last|close:client"; got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}
