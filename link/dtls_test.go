package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

const testPSK = "73656372657421"

func pskOpts(identity string) *Options {
	return &Options{TLS: TLSOptions{PSK: testPSK, PSKIdentity: identity}}
}

// dtlsPair listens on dtls://127.0.0.1:0 with lo and dials it with do; it
// returns both ends of the association (the dial error when it fails) and
// what the listener logged.
func dtlsPair(t *testing.T, lo, do *Options) (client, server net.Conn, dialErr error, logs func() string) {
	t.Helper()
	var mu sync.Mutex
	var logged []string
	if lo == nil {
		lo = &Options{}
	}
	lo.Log = func(format string, args ...any) {
		mu.Lock()
		logged = append(logged, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	ln, err := Listen(context.Background(), Addr{Scheme: "dtls", Host: "127.0.0.1", Port: "0"}, lo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	a, err := Parse("dtls://"+ln.Addr().String(), false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	logs = func() string { mu.Lock(); defer mu.Unlock(); return strings.Join(logged, "\n") }
	client, dialErr = Dial(ctx, a, do)
	if dialErr != nil {
		return nil, nil, dialErr, logs
	}
	t.Cleanup(func() { client.Close() })
	select {
	case server = <-accepted:
		t.Cleanup(func() { server.Close() })
	case <-time.After(3 * time.Second):
		t.Fatal("the listener accepted nothing")
	}
	return client, server, nil, logs
}

func TestDTLSAddr(t *testing.T) {
	a, err := Parse("DTLS://127.0.0.1:5684", false)
	if err != nil {
		t.Fatal(err)
	}
	if a.Scheme != "dtls" || a.Network() != "udp" || a.Transport() != "dtls" || !a.Datagram() || a.Packet() || a.Stream() {
		t.Fatalf("%+v: network %s datagram %v packet %v stream %v", a, a.Network(), a.Datagram(), a.Packet(), a.Stream())
	}
	if a.String() != "dtls://127.0.0.1:5684" {
		t.Fatal(a.String())
	}
}

// Each write is one record and each read one message, exactly; a message
// longer than a record carries arrives as several.
func TestDTLSPSKMessages(t *testing.T) {
	c, s, err, _ := dtlsPair(t, pskOpts("dev"), pskOpts("dev"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(Datagrammer); !ok {
		t.Fatalf("%T is not a Datagrammer", c)
	}
	buf := make([]byte, 64<<10)
	for _, msg := range [][]byte{[]byte("one"), {0, 1, 2, 0xff}, []byte("three\n")} {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		s.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := s.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, msg)
		}
	}
	big := bytes.Repeat([]byte("0123456789"), 1000) // 10000 bytes: two records
	if n, err := s.Write(big); err != nil || n != len(big) {
		t.Fatalf("write %d, %v", n, err)
	}
	var got []byte
	for len(got) < len(big) {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n > maxDTLSRecord {
			t.Fatalf("a record of %d bytes", n)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("the long message changed on the way")
	}
}

func TestDTLSPSKMismatch(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the handshake timeout")
	}
	lo := pskOpts("dev")
	do := &Options{Timeout: 2 * time.Second, TLS: TLSOptions{PSK: "0badc0de", PSKIdentity: "dev"}}
	_, _, err, logs := dtlsPair(t, lo, do)
	var te *TLSError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "dtls handshake with 127.0.0.1:") || !strings.Contains(err.Error(), "--psk") {
		t.Fatalf("got %v", err)
	}
	deadline := time.Now().Add(15 * time.Second) // the listener knows when its own handshake times out
	for !strings.Contains(logs(), "could not decrypt the client's keys (a different --psk?)") {
		if time.Now().After(deadline) {
			t.Fatalf("the listener logged %q", logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDTLSPSKIdentityRefused(t *testing.T) {
	do := pskOpts("intruder")
	do.Timeout = 3 * time.Second
	_, _, err, logs := dtlsPair(t, pskOpts("dev"), do)
	if err == nil || !strings.Contains(err.Error(), "dtls handshake with") {
		t.Fatalf("got %v", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(logs(), `unknown psk identity "intruder" (want "dev")`) {
		if time.Now().After(deadline) {
			t.Fatalf("the listener logged %q", logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDTLSCertificates(t *testing.T) {
	// The ephemeral certificate is not trusted by default, and says so...
	_, _, err, logs := dtlsPair(t, nil, &Options{Timeout: 3 * time.Second})
	if !errors.Is(err, ErrUnknownAuthority) || !strings.HasPrefix(err.Error(), "dtls handshake with 127.0.0.1:") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(logs(), "dtls: ephemeral self-signed certificate sha256:") {
		t.Fatalf("no fingerprint logged: %q", logs())
	}
	// ...and a wrong pin is named.
	_, _, err, _ = dtlsPair(t, nil, &Options{Timeout: 3 * time.Second, TLS: TLSOptions{Pin: "sha256:" + strings.Repeat("00", 32)}})
	if !errors.Is(err, ErrPinMismatch) {
		t.Fatalf("got %v", err)
	}
}

func TestDTLSPinnedEphemeral(t *testing.T) {
	var fp string
	lo := &Options{}
	ln, err := Listen(context.Background(), Addr{Scheme: "dtls", Host: "127.0.0.1", Port: "0"}, lo)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fp = ln.(*DTLSListener).Fingerprint
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hi"))
		}
	}()
	a, _ := Parse("dtls://"+ln.Addr().String(), false)
	c, err := Dial(context.Background(), a, &Options{Timeout: 3 * time.Second, TLS: TLSOptions{Pin: fp}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 100)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("%q %v", buf[:n], err)
	}
}

func TestDTLSOptionErrors(t *testing.T) {
	a := Addr{Scheme: "dtls", Host: "127.0.0.1", Port: "1"}
	for _, tc := range []struct {
		t    TLSOptions
		want string
	}{
		{TLSOptions{PSK: "zz", PSKIdentity: "x"}, "want the key in hex"},
		{TLSOptions{PSK: testPSK}, "--psk needs --psk-identity"},
		{TLSOptions{PSKIdentity: "x"}, "--psk-identity needs the key"},
		{TLSOptions{PSK: testPSK, PSKFile: "/nonexistent", PSKIdentity: "x"}, "give one key"},
		{TLSOptions{PSK: testPSK, PSKIdentity: "x", Insecure: true}, "--psk replaces certificates"},
	} {
		_, err := Dial(context.Background(), a, &Options{TLS: tc.t})
		if !errors.Is(err, ErrBadOption) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.t, err, tc.want)
		}
	}
}

// A key given for another transport is a usage error, not ignored.
func TestPSKOnlyForDTLS(t *testing.T) {
	o := pskOpts("dev")
	if _, err := Dial(context.Background(), Addr{Scheme: "tcp", Host: "127.0.0.1", Port: "1"}, o); !errors.Is(err, ErrBadOption) {
		t.Errorf("dial tcp: %v", err)
	}
	if _, err := Listen(context.Background(), Addr{Scheme: "tls", Host: "127.0.0.1", Port: "0"}, o); !errors.Is(err, ErrBadOption) {
		t.Errorf("listen tls: %v", err)
	}
	if _, err := ListenPacket(context.Background(), Addr{Scheme: "udp", Host: "127.0.0.1", Port: "0"}, o); !errors.Is(err, ErrBadOption) {
		t.Errorf("listen udp: %v", err)
	}
}

// A listener closed while handshakes are pending returns from Accept.
func TestDTLSListenerClose(t *testing.T) {
	ln, err := Listen(context.Background(), Addr{Scheme: "dtls", Host: "127.0.0.1", Port: "0"}, pskOpts(""))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	time.Sleep(20 * time.Millisecond)
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Accept still blocked after Close")
	}
}

// Past maxDTLSAssociations open, a new client is refused (said once) until
// one closes.
func TestDTLSAssociationLimit(t *testing.T) {
	defer func(n int64) { maxDTLSAssociations = n }(maxDTLSAssociations)
	maxDTLSAssociations = 1
	c1, s1, err, logs := dtlsPair(t, pskOpts("dev"), pskOpts("dev"))
	if err != nil {
		t.Fatal(err)
	}
	_ = c1
	a, _ := Parse("dtls://"+s1.LocalAddr().String(), false)
	c2, err := Dial(context.Background(), a, &Options{Timeout: 3 * time.Second, TLS: pskOpts("dev").TLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c2.Read(make([]byte, 100)); err == nil {
		t.Fatal("the second association was served")
	}
	if !strings.Contains(logs(), "1 DTLS associations open, the most a listener keeps") {
		t.Fatalf("logged %q", logs())
	}
}
