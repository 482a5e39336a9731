package link

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tlsServer listens on tls://127.0.0.1:0 with o, and answers each of up to n
// connections with "hi <ALPN>\n" after an explicit Handshake, reporting
// handshake errors on errs.
func tlsServer(t *testing.T, o *Options, n int) (*TLSListener, <-chan error) {
	t.Helper()
	l, err := Listen(testCtx(t), mustParse(t, "tls://127.0.0.1:0"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	tl, ok := l.(*TLSListener)
	if !ok {
		t.Fatalf("Listen(tls) returned %T, want *TLSListener", l)
	}
	errs := make(chan error, n)
	go func() {
		for i := 0; i < n; i++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = Handshake(ctx, c)
			cancel()
			if err == nil {
				c.SetDeadline(time.Now().Add(5 * time.Second))
				_, err = fmt.Fprintf(c, "hi %s\n", c.(*tls.Conn).ConnectionState().NegotiatedProtocol)
			}
			errs <- err
			c.Close()
		}
	}()
	return tl, errs
}

func writeCert(t *testing.T, hosts ...string) (cert tls.Certificate, certFile, keyFile string) {
	t.Helper()
	cert, err := SelfSigned(hosts...)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := WritePEM(cert, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	return cert, certFile, keyFile
}

func readHi(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func TestFingerprint(t *testing.T) {
	der := []byte("not really a certificate")
	sum := sha256.Sum256(der)
	want := "sha256:" + hex.EncodeToString(sum[:])
	if got := Fingerprint(der); got != want {
		t.Fatalf("Fingerprint = %s, want %s", got, want)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(want) {
		t.Fatalf("bad form %s", want)
	}
	// Every spelling --pin accepts decodes to the same digest.
	hexs := hex.EncodeToString(sum[:])
	var colons []string
	for i := 0; i < len(hexs); i += 2 {
		colons = append(colons, strings.ToUpper(hexs[i:i+2]))
	}
	for _, s := range []string{want, hexs, "SHA256:" + strings.ToUpper(hexs), "sha256:" + strings.Join(colons, ":"), strings.Join(colons, ":")} {
		got, err := ParsePin(s)
		if err != nil || string(got) != string(sum[:]) {
			t.Errorf("ParsePin(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "sha256:", "sha256:abcd", "md5:" + hexs, "sha256:" + hexs + "00", "sha256:" + strings.Repeat("zz", 32)} {
		_, err := ParsePin(s)
		if err == nil || !errors.Is(err, ErrBadOption) {
			t.Errorf("ParsePin(%q) = %v, want ErrBadOption", s, err)
		}
	}
	_, err := ParsePin("sha256:abcd")
	if want := `bad option: --pin "sha256:abcd": want sha256: followed by 64 hex digits (colons allowed)`; err.Error() != want {
		t.Errorf("ParsePin error %q, want %q", err, want)
	}
}

func TestSelfSigned(t *testing.T) {
	cert, err := SelfSigned("device.local", "192.0.2.7", "::1")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm %v, want ECDSA", leaf.PublicKeyAlgorithm)
	}
	for _, h := range []string{"device.local", "192.0.2.7", "::1"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("VerifyHostname(%s): %v", h, err)
		}
	}
	if err := leaf.VerifyHostname("other"); err == nil {
		t.Error("certificate valid for an unlisted name")
	}
	def, _ := SelfSigned()
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := def.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("default SelfSigned: %s: %v", h, err)
		}
	}
	// WritePEM round-trips through the standard loader.
	_, certFile, keyFile := writeCert(t, "localhost")
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
}

func TestTLSEphemeralPin(t *testing.T) {
	var logged []string
	o := &Options{Log: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }}
	tl, errs := tlsServer(t, o, 1)
	if len(logged) != 1 || logged[0] != "tls: ephemeral self-signed certificate "+tl.Fingerprint {
		t.Fatalf("log %q, want the fingerprint %s", logged, tl.Fingerprint)
	}
	// The fingerprint is that of the certificate the server presents.
	c, err := Dial(testCtx(t), addrOf(t, "tls", tl.Addr()), &Options{TLS: TLSOptions{Pin: strings.ToUpper(tl.Fingerprint[7:])}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := Fingerprint(c.(*tls.Conn).ConnectionState().PeerCertificates[0].Raw); got != tl.Fingerprint {
		t.Fatalf("presented %s, logged %s", got, tl.Fingerprint)
	}
	if got := readHi(t, c); got != "hi \n" {
		t.Fatalf("got %q", got)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	// A listen that fails logs no certificate nobody can connect to.
	logged = nil
	_, err = Listen(testCtx(t), addrOf(t, "tls", tl.Addr()), o)
	if err == nil || !strings.HasSuffix(err.Error(), ": address already in use") || len(logged) != 0 {
		t.Fatalf("listen on a busy port: %v, logged %q", err, logged)
	}
}

func TestTLSVerify(t *testing.T) {
	cert, certFile, keyFile := writeCert(t, "localhost", "127.0.0.1")
	_, otherCA, _ := writeCert(t, "localhost", "127.0.0.1")
	srv := &Options{TLS: TLSOptions{Cert: certFile, Key: keyFile, ALPN: []string{"mqtt", "h2"}}}
	fp := Fingerprint(cert.Certificate[0])
	wrongPin := "sha256:" + strings.Repeat("ab", 32)

	tests := []struct {
		name    string
		host    string // dial host, default 127.0.0.1
		opt     TLSOptions
		kind    error
		wantErr string // suffix after "tls handshake with HOST:PORT: "
		alpn    string
	}{
		{name: "ca file", opt: TLSOptions{CA: certFile}},
		{name: "ca file localhost", host: "localhost", opt: TLSOptions{CA: certFile}},
		{name: "ca file sni", opt: TLSOptions{CA: certFile, SNI: "localhost"}},
		{name: "insecure", opt: TLSOptions{Insecure: true}},
		{name: "pin", opt: TLSOptions{Pin: fp}},
		{name: "pin beats wrong name", opt: TLSOptions{Pin: fp, SNI: "nothere.example"}},
		{name: "alpn", opt: TLSOptions{CA: certFile, ALPN: []string{"h2"}}, alpn: "h2"},
		{name: "unknown authority", opt: TLSOptions{}, kind: ErrUnknownAuthority,
			wantErr: "certificate signed by unknown authority (use --ca FILE, --pin sha256:..., or --insecure)"},
		{name: "other ca", opt: TLSOptions{CA: otherCA}, kind: ErrUnknownAuthority,
			wantErr: "certificate signed by unknown authority (use --ca FILE, --pin sha256:..., or --insecure)"},
		{name: "name mismatch", opt: TLSOptions{CA: certFile, SNI: "bar"}, kind: ErrNameMismatch,
			wantErr: "certificate is valid for localhost, not bar (name mismatch; use --sni)"},
		{name: "pin mismatch", opt: TLSOptions{Pin: wrongPin}, kind: ErrPinMismatch,
			wantErr: "pin mismatch: server certificate is " + fp + ", want " + wrongPin},
		{name: "alpn mismatch", opt: TLSOptions{Insecure: true, ALPN: []string{"coap"}},
			wantErr: "the peer supports none of the --alpn protocols"},
	}
	tl, errs := tlsServer(t, srv, len(tests))
	port := tl.Addr().(*net.TCPAddr).Port
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := tt.host
			if host == "" {
				host = "127.0.0.1"
			}
			a := mustParse(t, fmt.Sprintf("tls://%s:%d", host, port))
			c, err := Dial(testCtx(t), a, &Options{TLS: tt.opt})
			serr := <-errs
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if got := readHi(t, c); got != "hi "+tt.alpn+"\n" {
					t.Fatalf("got %q", got)
				}
				if serr != nil {
					t.Fatalf("server: %v", serr)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("Dial succeeded, want %s", tt.wantErr)
			}
			want := "tls handshake with " + a.HostPort() + ": " + tt.wantErr
			if err.Error() != want {
				t.Errorf("error\n got: %s\nwant: %s", err, want)
			}
			if !errors.Is(err, ErrTLS) || (tt.kind != nil && !errors.Is(err, tt.kind)) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.kind)
			}
			if serr == nil {
				t.Errorf("server handshake succeeded")
			} else if !strings.HasPrefix(serr.Error(), "tls handshake with 127.0.0.1:") {
				t.Errorf("server error %q", serr)
			}
		})
	}
}

func TestTLSMutual(t *testing.T) {
	_, srvCert, srvKey := writeCert(t, "localhost", "127.0.0.1")
	_, cliCert, cliKey := writeCert(t, "sensor-17")
	_, strangerCert, strangerKey := writeCert(t, "stranger")
	srv := &Options{TLS: TLSOptions{Cert: srvCert, Key: srvKey, ClientCA: cliCert}}
	tl, errs := tlsServer(t, srv, 3)
	a := addrOf(t, "tls", tl.Addr())

	t.Run("client cert", func(t *testing.T) {
		c, err := Dial(testCtx(t), a, &Options{TLS: TLSOptions{CA: srvCert, Cert: cliCert, Key: cliKey}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := readHi(t, c); got != "hi \n" {
			t.Fatalf("got %q", got)
		}
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no client cert", func(t *testing.T) {
		c, err := Dial(testCtx(t), a, &Options{TLS: TLSOptions{CA: srvCert}})
		if err == nil {
			// TLS 1.3: the client learns of the refusal on its first read.
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = io.ReadAll(c)
		}
		if err == nil || !strings.Contains(Cause(err), "the server requires a client certificate (use --cert FILE --key FILE)") {
			t.Fatalf("client: %v (cause %q)", err, Cause(err))
		}
		serr := <-errs
		if !errors.Is(serr, ErrNoClientCert) || !strings.HasSuffix(serr.Error(), ": client sent no certificate (--client-ca requires one)") {
			t.Fatalf("server: %v", serr)
		}
	})
	t.Run("untrusted client cert", func(t *testing.T) {
		c, err := Dial(testCtx(t), a, &Options{TLS: TLSOptions{CA: srvCert, Cert: strangerCert, Key: strangerKey}})
		if err == nil {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = io.ReadAll(c)
		}
		if err == nil || !strings.Contains(Cause(err), "the peer refused our certificate") {
			t.Fatalf("client: %v (cause %q)", err, Cause(err))
		}
		serr := <-errs
		if !errors.Is(serr, ErrUnknownAuthority) || !strings.HasSuffix(serr.Error(), ": client certificate signed by unknown authority (not issued by --client-ca)") {
			t.Fatalf("server: %v", serr)
		}
	})
}

func TestTLSOptionErrors(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	_, certFile, keyFile := writeCert(t, "localhost")
	a := mustParse(t, "tls://127.0.0.1:1")
	for _, tc := range []struct {
		name string
		opt  TLSOptions
		want string
	}{
		{"missing ca", TLSOptions{CA: filepath.Join(dir, "nope.pem")}, "bad option: --ca: open " + filepath.Join(dir, "nope.pem") + ": no such file or directory"},
		{"ca not pem", TLSOptions{CA: keyFile}, "bad option: --ca " + keyFile + ": no PEM certificate in the file"},
		{"key without cert", TLSOptions{Key: keyFile}, "bad option: --key " + keyFile + " needs --cert FILE"},
		{"cert without its key", TLSOptions{Cert: certFile}, "bad option: --cert " + certFile + ": no private key in it (give --key FILE): tls: found a certificate rather than a key in the PEM for the private key"},
		{"cert and key swapped", TLSOptions{Cert: keyFile, Key: certFile}, "bad option: --cert " + keyFile + " --key " + certFile + ": tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched"},
		{"bad pin", TLSOptions{Pin: "abc"}, `bad option: --pin "abc": want sha256: followed by 64 hex digits (colons allowed)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Dial(ctx, a, &Options{TLS: tc.opt})
			if err == nil || err.Error() != tc.want || !errors.Is(err, ErrBadOption) {
				t.Fatalf("Dial: %v\nwant: %s", err, tc.want)
			}
		})
	}
	_, err := Listen(ctx, mustParse(t, "tls://127.0.0.1:0"), &Options{TLS: TLSOptions{ClientCA: filepath.Join(dir, "nope.pem")}})
	if err == nil || !errors.Is(err, ErrBadOption) || !strings.HasPrefix(err.Error(), "bad option: --client-ca: open ") {
		t.Fatalf("Listen with missing --client-ca: %v", err)
	}
}

func TestTLSNotTLS(t *testing.T) {
	// A plain TCP server that greets: the TLS client must say it is not TLS.
	l, err := Listen(testCtx(t), mustParse(t, "127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			io.WriteString(c, "220 plain text service ready\r\n")
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
	}()
	a := addrOf(t, "tls", l.Addr())
	_, err = Dial(testCtx(t), a, &Options{TLS: TLSOptions{Insecure: true}})
	if want := "tls handshake with " + a.HostPort() + ": the peer does not speak tls (got a non-tls record)"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestTLSHandshakeTimeout(t *testing.T) {
	// A server that accepts and never answers: ctx bounds the handshake.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			time.Sleep(2 * time.Second)
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, addrOf(t, "tls", l.Addr()), &Options{TLS: TLSOptions{Insecure: true}})
	if err == nil || !strings.HasSuffix(err.Error(), ": timed out") {
		t.Fatalf("got %v, want a timeout", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("handshake took %v despite a 200ms deadline", d)
	}
}

func TestTLSCombinedPEM(t *testing.T) {
	_, certFile, keyFile := writeCert(t, "localhost", "127.0.0.1")
	both := filepath.Join(t.TempDir(), "both.pem")
	c, _ := os.ReadFile(certFile)
	k, _ := os.ReadFile(keyFile)
	if err := os.WriteFile(both, append(c, k...), 0o600); err != nil {
		t.Fatal(err)
	}
	tl, errs := tlsServer(t, &Options{TLS: TLSOptions{Cert: both}}, 1)
	conn, err := Dial(testCtx(t), addrOf(t, "tls", tl.Addr()), &Options{TLS: TLSOptions{CA: certFile}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := readHi(t, conn); got != "hi \n" {
		t.Fatalf("got %q", got)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	// Handshake is a no-op on plain conns.
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if err := Handshake(testCtx(t), p1); err != nil {
		t.Fatal(err)
	}
}
