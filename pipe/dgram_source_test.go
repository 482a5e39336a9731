package pipe

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

// The datagram source returns every datagram whole, at every size around
// the boundaries, with its sender's address, in order, from IPv4 and IPv6
// senders alike.
func TestDatagramSourceSizesAndSenders(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			host := "127.0.0.1"
			if network == "udp6" {
				host = "[::1]"
			}
			pc, err := net.ListenPacket(network, host+":0")
			if err != nil {
				t.Skip(err)
			}
			defer pc.Close()
			pc.(*net.UDPConn).SetReadBuffer(4 << 20)
			flushed := 0
			src := newDatagramSource(pc, func() error { flushed++; return nil })

			senders := make([]*net.UDPConn, 3)
			for i := range senders {
				c, err := net.DialUDP(network, nil, pc.LocalAddr().(*net.UDPAddr))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				senders[i] = c
			}
			sizes := []int{0, 1, 63, 64, 65, 1500, 65506, 65507}
			// More datagrams than a batch holds, so a batch boundary is crossed.
			type sent struct {
				data []byte
				from netip.AddrPort
			}
			var want []sent
			for round := range 6 {
				for i, c := range senders {
					size := sizes[(round*len(senders)+i)%len(sizes)]
					b := bytes.Repeat([]byte{byte('a' + round), byte('0' + i)}, size/2+1)[:size]
					if _, err := c.Write(b); err != nil {
						t.Fatal(err)
					}
					want = append(want, sent{b, c.LocalAddr().(*net.UDPAddr).AddrPort()})
				}
			}
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			for k, w := range want {
				data, ap, addr, err := src.next()
				if err != nil {
					t.Fatalf("datagram %d: %v", k, err)
				}
				if !ap.IsValid() && addr != nil {
					ap = addr.(*net.UDPAddr).AddrPort()
				}
				if !bytes.Equal(data, w.data) {
					t.Fatalf("datagram %d: %d bytes, want %d", k, len(data), len(w.data))
				}
				if ap.Port() != w.from.Port() || ap.Addr().Unmap() != w.from.Addr().Unmap() {
					t.Fatalf("datagram %d from %v, want %v", k, ap, w.from)
				}
			}
			if s := fmt.Sprintf("%T", src); s == "*pipe.batchSource" && flushed != 0 {
				t.Errorf("flushed %d times while datagrams were waiting", flushed)
			}
		})
	}
}
