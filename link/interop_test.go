package link

import (
	"bufio"
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// opensslCert makes a certificate with openssl itself, so Go reads what
// openssl writes.
func opensslCert(t *testing.T, openssl string) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-nodes", "-keyout", keyFile, "-out", certFile, "-subj", "/CN=localhost",
		"-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	return certFile, keyFile
}

// opensslFingerprint is openssl's own SHA-256 of the certificate, in its
// `AB:CD:...` spelling.
func opensslFingerprint(t *testing.T, openssl, certFile string) string {
	t.Helper()
	out, err := exec.Command(openssl, "x509", "-noout", "-fingerprint", "-sha256", "-in", certFile).Output()
	if err != nil {
		t.Fatalf("openssl x509: %v", err)
	}
	_, fp, ok := strings.Cut(strings.TrimSpace(string(out)), "=")
	if !ok {
		t.Fatalf("openssl x509 printed %q", out)
	}
	return fp
}

// sServer starts `openssl s_server -rev` (it answers each line reversed) for
// n connections and returns its address.
func sServer(t *testing.T, openssl, certFile, keyFile string, n int) Addr {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	cmd := exec.CommandContext(ctx, openssl, "s_server", "-accept", "127.0.0.1:0", "-cert", certFile, "-key", keyFile,
		"-rev", "-naccept", fmt.Sprint(n))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ACCEPT ") {
				select {
				case lines <- strings.TrimPrefix(sc.Text(), "ACCEPT "):
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case hp := <-lines:
		return mustParse(t, "tls://"+hp)
	case <-time.After(10 * time.Second):
		t.Fatal("openssl s_server did not report its port")
	}
	return Addr{}
}

func TestInteropOpenSSLServer(t *testing.T) {
	openssl := needTool(t, "openssl")
	certFile, keyFile := opensslCert(t, openssl)
	fp := opensslFingerprint(t, openssl, certFile)
	tests := []struct {
		name string
		opt  TLSOptions
	}{
		{"ca", TLSOptions{CA: certFile}},
		{"ca and sni", TLSOptions{CA: certFile, SNI: "localhost"}},
		{"pin openssl spelling", TLSOptions{Pin: "sha256:" + fp}},
		{"pin lower hex", TLSOptions{Pin: strings.ToLower(strings.ReplaceAll(fp, ":", ""))}},
	}
	a := sServer(t, openssl, certFile, keyFile, len(tests))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Dial(testCtx(t), a, &Options{TLS: tt.opt})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, "hello wirecat\n"); err != nil {
				t.Fatal(err)
			}
			got, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if got != "taceriw olleh\n" {
				t.Fatalf("s_server -rev answered %q", got)
			}
		})
	}
}

// sClient runs openssl s_client against addr with args, feeding it stdin,
// and returns its stdout.
func sClient(t *testing.T, openssl, hostport, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, openssl, append([]string{"s_client", "-connect", hostport}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("openssl s_client: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// lineServer answers one line per connection with "ack <line>", n times.
func lineServer(t *testing.T, o *Options, n int) (*TLSListener, <-chan error) {
	t.Helper()
	l, err := Listen(testCtx(t), mustParse(t, "tls://127.0.0.1:0"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	errs := make(chan error, n)
	go func() {
		for i := 0; i < n; i++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err == nil {
				_, err = io.WriteString(c, "ack "+line)
			}
			errs <- err
			c.Close()
		}
	}()
	return l.(*TLSListener), errs
}

func TestInteropOpenSSLClient(t *testing.T) {
	openssl := needTool(t, "openssl")

	t.Run("cert file, verified", func(t *testing.T) {
		certFile, keyFile := opensslCert(t, openssl)
		tl, errs := lineServer(t, &Options{TLS: TLSOptions{Cert: certFile, Key: keyFile, ALPN: []string{"mqtt"}}}, 1)
		out := sClient(t, openssl, tl.Addr().String(), "reading=21.5\n",
			"-CAfile", certFile, "-verify_return_error", "-verify_hostname", "localhost", "-servername", "localhost",
			"-alpn", "mqtt", "-ign_eof")
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Verify return code: 0 (ok)", "ALPN protocol: mqtt", "ack reading=21.5\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("s_client output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("ephemeral fingerprint", func(t *testing.T) {
		var logged string
		tl, errs := lineServer(t, &Options{Log: func(f string, a ...any) { logged = fmt.Sprintf(f, a...) }}, 1)
		out := sClient(t, openssl, tl.Addr().String(), "hi\n", "-showcerts", "-ign_eof")
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "ack hi\n") {
			t.Errorf("s_client output lacks the reply:\n%s", out)
		}
		block, _ := pem.Decode([]byte(out[strings.Index(out, "-----BEGIN CERTIFICATE-----"):]))
		if block == nil {
			t.Fatalf("no certificate in s_client output:\n%s", out)
		}
		if got := Fingerprint(block.Bytes); got != tl.Fingerprint || !strings.HasSuffix(logged, got) {
			t.Fatalf("openssl saw %s; listener says %s; logged %q", got, tl.Fingerprint, logged)
		}
	})

	t.Run("mtls", func(t *testing.T) {
		srvCert, srvKey := opensslCert(t, openssl)
		cliCert, cliKey := opensslCert(t, openssl)
		tl, errs := lineServer(t, &Options{TLS: TLSOptions{Cert: srvCert, Key: srvKey, ClientCA: cliCert}}, 1)
		out := sClient(t, openssl, tl.Addr().String(), "with cert\n",
			"-CAfile", srvCert, "-verify_return_error", "-cert", cliCert, "-key", cliKey, "-ign_eof")
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "ack with cert\n") {
			t.Errorf("s_client output lacks the reply:\n%s", out)
		}
	})
}
