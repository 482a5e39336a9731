package relay

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/diag"
	"github.com/wirecat-dev/wirecat/internal/testpeer"
	"github.com/wirecat-dev/wirecat/link"
)

var schemes = []string{"tcp", "tls", "unix", "udp", "unixgram"}

// echoAt starts an echo of the given scheme and returns its address.
func echoAt(t *testing.T, scheme string) string {
	t.Helper()
	ctx := context.Background()
	a := loopback(t, scheme)
	opts := &link.Options{Log: func(string, ...any) {}}
	if a.Packet() {
		pc, err := link.ListenPacket(ctx, a, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(buf[:n], from)
			}
		}()
		return addrString(scheme, pc.LocalAddr())
	}
	ln, err := link.Listen(ctx, a, opts)
	if err != nil {
		t.Fatal(err)
	}
	testpeer.Serve(t, ln, testpeer.Echo)
	return addrString(scheme, ln.Addr())
}

func loopback(t *testing.T, scheme string) link.Addr {
	if scheme == "unix" || scheme == "unixgram" {
		return mustParse(t, scheme+"://"+filepath.Join(t.TempDir(), "s.sock"))
	}
	return mustParse(t, scheme+"://127.0.0.1:0")
}

func addrString(scheme string, a net.Addr) string {
	return scheme + "://" + a.String()
}

// TestEveryTransportToEveryTransport relays line-framed messages from each
// kind of client to each kind of echo: stream to datagram makes each
// message one datagram, datagram to stream frames each datagram.
func TestEveryTransportToEveryTransport(t *testing.T) {
	for _, from := range schemes {
		for _, to := range schemes {
			t.Run(from+"-to-"+to, func(t *testing.T) {
				target := echoAt(t, to)
				r := New(Config{Target: mustParse(t, target), Framer: lineFramer(t),
					Dial: &link.Options{TLS: link.TLSOptions{Insecure: true}}, Log: &diag.Log{W: io.Discard}})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				la := loopback(t, from)
				var listen string
				if la.Packet() {
					pc, err := link.ListenPacket(ctx, la, nil)
					if err != nil {
						t.Fatal(err)
					}
					listen = addrString(from, pc.LocalAddr())
					go func() { done <- r.ServePacket(ctx, pc, from) }()
				} else {
					ln, err := link.Listen(ctx, la, &link.Options{Log: func(string, ...any) {}})
					if err != nil {
						t.Fatal(err)
					}
					listen = addrString(from, ln.Addr())
					go func() { done <- r.Serve(ctx, ln, from) }()
				}
				defer func() {
					cancel()
					if err := <-done; err != nil {
						t.Error(err)
					}
				}()
				c, err := link.Dial(ctx, mustParse(t, listen), &link.Options{TLS: link.TLSOptions{Insecure: true}})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 100)
				for i := range 3 {
					msg := fmt.Sprintf("message %d", i)
					if la.Packet() {
						c.Write([]byte(msg))
						n, err := c.Read(buf)
						if err != nil || string(buf[:n]) != msg {
							t.Fatalf("datagram back: %q, %v; want %q", buf[:n], err, msg)
						}
						continue
					}
					c.Write([]byte(msg + "\n"))
					want := msg + "\n"
					got := make([]byte, len(want))
					if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
						t.Fatalf("stream back: %q, %v; want %q", got, err, want)
					}
				}
				if tc, ok := c.(*tls.Conn); ok {
					tc.CloseWrite()
				}
			})
		}
	}
}
