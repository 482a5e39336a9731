package main

// Issue 11 (DTLS half): dtls:// against openssl s_server/s_client -dtls1_2,
// with a pre-shared key and with certificates, and the handshake failures
// (PSK mismatch, unknown CA, pin) each in one line.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	testPSK      = "73656372657421" // "secret!"
	testIdentity = "sensor-1"
)

// dtlsServer starts openssl s_server -dtls1_2 on a fresh UDP port for one
// client; extra arguments choose PSK or certificates.
func dtlsServer(t *testing.T, extra ...string) (*proc, string) {
	t.Helper()
	need(t, "openssl")
	port := freeUDPPort(t)
	args := append([]string{"s_server", "-dtls1_2", "-accept", fmt.Sprintf("127.0.0.1:%d", port), "-quiet", "-naccept", "1"}, extra...)
	srv := start(t, "openssl", args...)
	waitUDP(t, port)
	return srv, fmt.Sprintf("127.0.0.1:%d", port)
}

// dtlsListen starts `wirecat listen dtls://...` with args on a fresh port.
func dtlsListen(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	port := freeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wc := start(t, "wirecat", append([]string{"listen", "dtls://" + addr}, args...)...)
	waitUDP(t, port)
	return wc, addr
}

// exchange checks that a line goes each way between a and b: a's stdin to
// b's stdout and back.
func exchange(t *testing.T, a, b *proc) {
	t.Helper()
	io.WriteString(a.stdin, "ping from a\n")
	b.waitOutput("ping from a\n", 10*time.Second)
	io.WriteString(b.stdin, "pong from b\n")
	a.waitOutput("pong from b\n", 10*time.Second)
}

func TestDTLSPSKWithOpenSSLServer(t *testing.T) {
	srv, addr := dtlsServer(t, "-nocert", "-psk", testPSK, "-psk_identity", testIdentity)
	wc := start(t, "wirecat", "connect", "dtls://"+addr, "--psk", testPSK, "--psk-identity", testIdentity)
	exchange(t, wc, srv)
	wc.stdin.Close()
	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestDTLSPSKWithOpenSSLClient(t *testing.T) {
	need(t, "openssl")
	wc, addr := dtlsListen(t, "--psk", testPSK, "--psk-identity", testIdentity)
	cl := start(t, "openssl", "s_client", "-dtls1_2", "-connect", addr, "-psk", testPSK, "-psk_identity", testIdentity, "-quiet")
	exchange(t, cl, wc)
	wc.stdin.Close() // a datagram listener ends a moment after its input

	if code := wc.wait(10 * time.Second); code != 0 {
		t.Fatalf("listener exit %d", code)
	}
}

func TestDTLSCertificatesWithOpenSSL(t *testing.T) {
	p := makePKI(t)

	t.Run("verified by --ca", func(t *testing.T) {
		srv, addr := dtlsServer(t, "-cert", p.srv, "-key", p.srvKey)
		wc := start(t, "wirecat", "connect", "dtls://"+addr, "--ca", p.ca)
		exchange(t, wc, srv)
	})
	t.Run("unknown CA refused", func(t *testing.T) {
		_, addr := dtlsServer(t, "-cert", p.srv, "-key", p.srvKey)
		_, stderr, code := runWirecat(t, "", 15*time.Second, "connect", "dtls://"+addr)
		if code == 0 || !strings.Contains(stderr, "dtls handshake with "+addr+": certificate signed by unknown authority") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if n := strings.Count(stderr, "wirecat: "); n != 1 {
			t.Fatalf("want one line, got %d: %q", n, stderr)
		}
	})
	t.Run("pin mismatch refused", func(t *testing.T) {
		_, addr := dtlsServer(t, "-cert", p.srv, "-key", p.srvKey)
		_, stderr, code := runWirecat(t, "", 15*time.Second, "connect", "dtls://"+addr, "--pin", "sha256:"+strings.Repeat("ab", 32))
		if code == 0 || !strings.Contains(stderr, "pin mismatch: server certificate is sha256:") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("ephemeral certificate, openssl client", func(t *testing.T) {
		wc, addr := dtlsListen(t)
		wc.waitStderr("dtls: ephemeral self-signed certificate sha256:", 10*time.Second)
		cl := start(t, "openssl", "s_client", "-dtls1_2", "-connect", addr, "-quiet")
		exchange(t, cl, wc)
	})
	t.Run("client certificate to openssl", func(t *testing.T) {
		srv, addr := dtlsServer(t, "-cert", p.srv, "-key", p.srvKey, "-Verify", "1", "-CAfile", p.ca)
		wc := start(t, "wirecat", "connect", "dtls://"+addr, "--ca", p.ca, "--cert", p.cl, "--key", p.clKey)
		exchange(t, wc, srv)
	})
	t.Run("client certificate missing", func(t *testing.T) {
		_, addr := dtlsServer(t, "-cert", p.srv, "-key", p.srvKey, "-Verify", "1", "-CAfile", p.ca)
		_, stderr, code := runWirecat(t, "", 15*time.Second, "connect", "dtls://"+addr, "--ca", p.ca, "-w", "3s")
		if code == 0 || !strings.Contains(stderr, "dtls handshake with "+addr+": the server requires a client certificate (use --cert FILE --key FILE)") ||
			strings.Count(stderr, "wirecat: ") != 1 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("client certificate required", func(t *testing.T) {
		wc, addr := dtlsListen(t, "--cert", p.srv, "--key", p.srvKey, "--client-ca", p.ca)
		cl := start(t, "openssl", "s_client", "-dtls1_2", "-connect", addr, "-CAfile", p.ca, "-cert", p.cl, "-key", p.clKey, "-quiet")
		exchange(t, cl, wc)
	})
}

// A client with the wrong key gets one clear line; the listener says why
// it refused it, in one line, and goes on to serve the next client.
func TestDTLSPSKMismatch(t *testing.T) {
	wc, addr := dtlsListen(t, "-k", "--psk", testPSK, "--psk-identity", testIdentity)
	_, stderr, code := runWirecat(t, "x\n", 15*time.Second, "connect", "dtls://"+addr, "--psk", "0badc0de", "--psk-identity", testIdentity)
	if code == 0 || !strings.Contains(stderr, "dtls handshake with "+addr+": ") || strings.Count(stderr, "wirecat: ") != 1 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stderr, "--psk") {
		t.Fatalf("the error does not point at the key: %q", stderr)
	}
	wc.waitStderr("refused 127.0.0.1:", 15*time.Second)

	_, stderr, code = runWirecat(t, "x\n", 15*time.Second, "connect", "dtls://"+addr, "--psk", testPSK, "--psk-identity", "intruder")
	if code == 0 || !strings.Contains(stderr, "dtls handshake with") {
		t.Fatalf("wrong identity: exit %d, stderr %q", code, stderr)
	}
	wc.waitStderr(`unknown psk identity "intruder"`, 10*time.Second)

	_, stderr, code = runWirecat(t, "still here\n", 15*time.Second, "connect", "dtls://"+addr, "--psk", testPSK, "--psk-identity", testIdentity)
	if code != 0 {
		t.Fatalf("a good client after the bad ones: exit %d, stderr %q", code, stderr)
	}
	wc.waitOutput("still here\n", 10*time.Second)
}

// scripts/coap-sensor.lua answers libcoap's coap-client over coaps:// (DTLS
// with a pre-shared key), its CoAP messages built by hand in Lua.
func TestCoAPSensorOverDTLS(t *testing.T) {
	need(t, "coap-client-openssl")
	port := freeUDPPort(t)
	sim := start(t, "wirecat", "simulate", "../../scripts/coap-sensor.lua", "--arg", fmt.Sprintf("addr=127.0.0.1:%d", port))
	waitUDP(t, port)
	get := func(path, key string) (string, error) {
		out, err := exec.Command("timeout", "10", "coap-client-openssl", "-m", "get", "-u", testIdentity, "-k", key,
			fmt.Sprintf("coaps://127.0.0.1:%d/%s", port, path)).CombinedOutput()
		return string(out), err
	}
	out, err := get("temperature", "secret!")
	if err != nil || !regexp.MustCompile(`^\d+\.\d\s*$`).MatchString(out) {
		t.Fatalf("GET /temperature: %v %q", err, out)
	}
	if out, err = get(".well-known/core", "secret!"); err != nil || !strings.Contains(out, `</temperature>;rt="temperature";ct=0`) {
		t.Fatalf("GET /.well-known/core: %v %q", err, out)
	}
	if out, _ = get("nope", "secret!"); !strings.Contains(out, "4.04") {
		t.Fatalf("GET /nope: %q", out)
	}
	sim.waitStderr("GET /temperature", 5*time.Second)
}

// Lua's net.connect speaks dtls:// with a key from its options, and a
// signal ends a listener with an association open within a second.
func TestDTLSFromLua(t *testing.T) {
	wc, addr := dtlsListen(t, "-k", "--psk", testPSK, "--psk-identity", testIdentity, "--exec", "cat")
	script := filepath.Join(t.TempDir(), "dev.lua")
	os.WriteFile(script, []byte(fmt.Sprintf(`
local c = assert(net.connect("dtls://%s", { psk = "%s", psk_identity = "%s" }))
c:send("from lua")
print(c:recv(5))
c:close()
`, addr, testPSK, testIdentity)), 0o644)
	out, stderr, code := runWirecat(t, "", 20*time.Second, "simulate", script)
	if code != 0 || !strings.Contains(out, "from lua") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	held := start(t, "wirecat", "connect", "dtls://"+addr, "--psk", testPSK, "--psk-identity", testIdentity)
	io.WriteString(held.stdin, "held\n")
	held.waitOutput("held\n", 10*time.Second)
	begin := time.Now()
	wc.cmd.Process.Signal(syscall.SIGTERM)
	held.cmd.Process.Signal(syscall.SIGTERM)
	wc.wait(time.Second)
	held.wait(time.Second)
	if d := time.Since(begin); d > time.Second {
		t.Fatalf("exits took %v", d)
	}
}

// relay puts a DTLS front (PSK) on a TCP service: each DTLS client gets
// its own TCP connection, each record forwarded as it came.
func TestDTLSRelayFront(t *testing.T) {
	tport := freePort(t)
	start(t, "wirecat", "listen", "-k", fmt.Sprintf("127.0.0.1:%d", tport), "--exec", "cat")
	waitListen(t, tport)
	port := freeUDPPort(t)
	relay := start(t, "wirecat", "relay", fmt.Sprintf("dtls://127.0.0.1:%d", port), fmt.Sprintf("tcp://127.0.0.1:%d", tport),
		"--psk", testPSK, "--psk-identity", testIdentity)
	waitUDP(t, port)
	for i := range 2 {
		cl := start(t, "wirecat", "connect", fmt.Sprintf("dtls://127.0.0.1:%d", port), "--psk", testPSK, "--psk-identity", testIdentity)
		msg := fmt.Sprintf("record %d\n", i)
		io.WriteString(cl.stdin, msg)
		cl.waitOutput(msg, 10*time.Second)
		cl.stdin.Close()
		if code := cl.wait(10 * time.Second); code != 0 {
			t.Fatalf("client %d: exit %d", i, code)
		}
	}
	relay.cmd.Process.Signal(syscall.SIGTERM)
	relay.wait(time.Second)
}
