package main

// Issue 2: TLS against openssl s_server and s_client: the ephemeral
// certificate and its pin, --ca, --sni, and mTLS with --client-ca.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pki is a throwaway CA with a server certificate (localhost, 127.0.0.1)
// and a client certificate, all made by openssl.
type pki struct {
	dir                        string
	ca, srv, srvKey, cl, clKey string
}

func makePKI(t *testing.T) *pki {
	t.Helper()
	need(t, "openssl")
	d := t.TempDir()
	p := &pki{dir: d,
		ca: filepath.Join(d, "ca.pem"), srv: filepath.Join(d, "srv.pem"), srvKey: filepath.Join(d, "srv.key"),
		cl: filepath.Join(d, "cl.pem"), clKey: filepath.Join(d, "cl.key")}
	os.WriteFile(filepath.Join(d, "srv.ext"), []byte("subjectAltName=DNS:localhost,IP:127.0.0.1\n"), 0o644)
	os.WriteFile(filepath.Join(d, "cl.ext"), []byte("extendedKeyUsage=clientAuth\n"), 0o644)
	ec := []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"}
	steps := [][]string{
		append(append([]string{"req", "-x509"}, ec...), "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=wirecat-test-ca"),
		append(append([]string{"req"}, ec...), "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost"),
		{"x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "srv.ext"},
		append(append([]string{"req"}, ec...), "-keyout", "cl.key", "-out", "cl.csr", "-subj", "/CN=device-1"),
		{"x509", "-req", "-in", "cl.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "cl.pem", "-days", "2", "-extfile", "cl.ext"},
	}
	for _, s := range steps {
		cmd := exec.Command("openssl", s...)
		cmd.Dir = d
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", s, err, out)
		}
	}
	return p
}

// sServer starts openssl s_server on a fresh port with the PKI's server
// certificate; extra arguments follow. Its stdin is a pipe the test holds.
func sServer(t *testing.T, p *pki, extra ...string) (*proc, string) {
	t.Helper()
	port := freePort(t)
	args := append([]string{"s_server", "-accept", fmt.Sprintf("127.0.0.1:%d", port), "-cert", p.srv, "-key", p.srvKey, "-quiet", "-naccept", "1"}, extra...)
	srv := start(t, "openssl", args...)
	waitListen(t, port)
	return srv, fmt.Sprintf("127.0.0.1:%d", port)
}

var fingerprintRE = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// tlsListen starts `wirecat listen tls://...` and returns it with its
// address and the fingerprint it printed.
func tlsListen(t *testing.T, args ...string) (*proc, string, string) {
	t.Helper()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wc := start(t, "wirecat", append([]string{"listen", "tls://" + addr}, args...)...)
	waitListen(t, port)
	var fp string
	if len(args) == 0 || !strings.Contains(strings.Join(args, " "), "--cert") {
		wc.waitStderr("sha256:", 10*time.Second)
		fp = fingerprintRE.FindString(wc.stderr.String())
		if fp == "" {
			t.Fatalf("no fingerprint on stderr: %q", wc.stderr)
		}
	}
	return wc, addr, fp
}

func TestTLSEphemeralCertificateWithOpenSSLClient(t *testing.T) {
	need(t, "openssl")
	wc, addr, _ := tlsListen(t)
	if wc.stdout.String() != "" {
		t.Fatalf("the fingerprint must go to stderr, stdout has %q", wc.stdout)
	}
	cl := start(t, "openssl", "s_client", "-connect", addr, "-quiet")
	fmt.Fprint(cl.stdin, "from openssl\n")
	wc.waitOutput("from openssl\n", 10*time.Second)
	fmt.Fprint(wc.stdin, "from wirecat\n")
	cl.waitOutput("from wirecat\n", 10*time.Second)
	cl.cmd.Process.Kill() // s_client -quiet ignores EOF on stdin; the peer going away ends wirecat
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("listen exited %d: %s", code, wc.stderr)
	}
}

func TestTLSPin(t *testing.T) {
	need(t, "openssl")
	wc, addr, fp := tlsListen(t)
	out, stderr, code := runWirecat(t, "ping\n", 10*time.Second, "connect", "tls://"+addr, "--pin", fp)
	if code != 0 {
		t.Fatalf("connect --pin exited %d: %s", code, stderr)
	}
	wc.waitOutput("ping\n", 10*time.Second)
	if out != "" {
		t.Fatalf("unexpected output %q", out)
	}

	t.Run("wrong pin", func(t *testing.T) {
		wc, addr, fp := tlsListen(t)
		wrong := "sha256:" + strings.Repeat("ab", 32)
		if wrong == fp {
			t.Skip("astronomically unlikely")
		}
		_, stderr, code := runWirecat(t, "ping\n", 10*time.Second, "connect", "tls://"+addr, "--pin", wrong)
		if code != 1 || !strings.Contains(stderr, "pin mismatch") || !strings.Contains(stderr, fp) {
			t.Fatalf("exit %d, stderr %q: want 1 and a pin mismatch naming %s", code, stderr, fp)
		}
		// The listener reports the refused handshake and keeps waiting for its peer.
		wc.waitStderr("bad certificate", 10*time.Second)
		if _, stderr, code := runWirecat(t, "second\n", 10*time.Second, "connect", "tls://"+addr, "--pin", fp); code != 0 {
			t.Fatalf("a good client after a refused one: exit %d: %s", code, stderr)
		}
		wc.waitOutput("second\n", 10*time.Second)
	})

	t.Run("malformed pin", func(t *testing.T) {
		_, stderr, code := runWirecat(t, "", 10*time.Second, "connect", "tls://"+addr, "--pin", "sha256:xyz")
		if code != 2 || !strings.Contains(stderr, "--pin") {
			t.Fatalf("exit %d, stderr %q: want a usage error naming --pin", code, stderr)
		}
	})
}

func TestTLSVerificationAgainstOpenSSLServer(t *testing.T) {
	p := makePKI(t)

	t.Run("unknown authority", func(t *testing.T) {
		_, addr := sServer(t, p)
		_, stderr, code := runWirecat(t, "x\n", 10*time.Second, "connect", "tls://"+addr)
		if code != 1 || !strings.Contains(stderr, "unknown authority") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if n := strings.Count(stderr, "\n"); n != 1 {
			t.Fatalf("want one line, got %q", stderr)
		}
	})

	t.Run("--ca", func(t *testing.T) {
		srv, addr := sServer(t, p)
		fmt.Fprint(srv.stdin, "hello device\n")
		out, stderr, code := runWirecat(t, "hello server\n", 10*time.Second, "connect", "tls://"+addr, "--ca", p.ca, "--recv-only", "--idle", "1s")
		if code != 0 || out != "hello device\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
	})

	t.Run("--ca both ways", func(t *testing.T) {
		srv, addr := sServer(t, p)
		wc := start(t, "wirecat", "connect", "tls://"+addr, "--ca", p.ca)
		fmt.Fprint(wc.stdin, "from wirecat\n")
		srv.waitOutput("from wirecat\n", 10*time.Second)
		fmt.Fprint(srv.stdin, "from openssl\n")
		wc.waitOutput("from openssl\n", 10*time.Second)
	})

	t.Run("--sni name mismatch", func(t *testing.T) {
		_, addr := sServer(t, p)
		_, stderr, code := runWirecat(t, "x\n", 10*time.Second, "connect", "tls://"+addr, "--ca", p.ca, "--sni", "board.example")
		if code != 1 || !strings.Contains(stderr, "board.example") || !strings.Contains(stderr, "name mismatch") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("--sni matching name", func(t *testing.T) {
		srv, addr := sServer(t, p)
		wc := start(t, "wirecat", "connect", "tls://"+addr, "--ca", p.ca, "--sni", "localhost")
		fmt.Fprint(wc.stdin, "named\n")
		srv.waitOutput("named\n", 10*time.Second)
	})
}

func TestTLSMutual(t *testing.T) {
	p := makePKI(t)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wc := start(t, "wirecat", "listen", "-k", "tls://"+addr, "--cert", p.srv, "--key", p.srvKey, "--client-ca", p.ca, "--recv-only")
	waitListen(t, port)

	// Without a client certificate: refused, and the listener says why.
	anon := startIn(t, strings.NewReader("anonymous\n"), "openssl", "s_client", "-connect", addr, "-CAfile", p.ca, "-quiet")
	anon.wait(10 * time.Second)
	wc.waitStderr("certificate", 10*time.Second)
	if strings.Contains(wc.stdout.String(), "anonymous") {
		t.Fatalf("a client without a certificate got through: %q", wc.stdout)
	}
	if !strings.Contains(wc.stderr.String(), "no certificate") && !strings.Contains(wc.stderr.String(), "requires") {
		t.Fatalf("the refusal should say the certificate is missing: %q", wc.stderr)
	}

	// With one: accepted.
	cl := start(t, "openssl", "s_client", "-connect", addr, "-CAfile", p.ca, "-cert", p.cl, "-key", p.clKey, "-quiet")
	fmt.Fprint(cl.stdin, "device-1 reporting\n")
	wc.waitOutput("device-1 reporting\n", 10*time.Second)

	// wirecat as the mTLS client too.
	_, stderr, code := runWirecat(t, "wirecat client\n", 10*time.Second, "connect", "tls://"+addr, "--ca", p.ca, "--cert", p.cl, "--key", p.clKey)
	if code != 0 {
		t.Fatalf("connect --cert: exit %d: %s", code, stderr)
	}
	wc.waitOutput("wirecat client\n", 10*time.Second)
	_, stderr, code = runWirecat(t, "no cert\n", 10*time.Second, "connect", "tls://"+addr, "--ca", p.ca)
	if code != 1 || !strings.Contains(stderr, "client certificate") {
		t.Fatalf("connect without --cert to an mTLS server: exit %d, stderr %q", code, stderr)
	}
	if strings.Contains(wc.stdout.String(), "no cert") {
		t.Fatalf("a client without a certificate got through: %q", wc.stdout)
	}
}
