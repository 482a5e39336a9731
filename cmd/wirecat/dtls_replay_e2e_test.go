package main

// Issue 11: a recorded DTLS session replays both ways against openssl
// -dtls1_2, with a pre-shared key and with certificates: `replay --to
// dtls://…` as the client of s_server (--check compares its answers), and
// `replay --as server --listen dtls://…` as the mock server of s_client.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recordDTLS records a client that says hello and bye to a wirecat DTLS
// listener answering "ack:" to each line.
func recordDTLS(t *testing.T) string {
	t.Helper()
	_, addr := dtlsListen(t, "-k", "--psk", testPSK, "--psk-identity", testIdentity, "--exec", "sed -u s/^/ack:/")
	rec := filepath.Join(t.TempDir(), "dtls.jsonl")
	cl := start(t, "wirecat", "connect", "dtls://"+addr, "--psk", testPSK, "--psk-identity", testIdentity, "--record", rec)
	for _, m := range []string{"hello", "bye"} {
		io.WriteString(cl.stdin, m+"\n")
		cl.waitOutput("ack:"+m+"\n", 10*time.Second)
	}
	cl.stdin.Close()
	if code := cl.wait(10 * time.Second); code != 0 {
		t.Fatalf("recording client exit %d: %s", code, cl.stderr)
	}
	b, _ := os.ReadFile(rec)
	for _, want := range []string{`"transport":"dtls"`, `"from":"client","text":"hello\n"`, `"from":"server","text":"ack:bye\n"`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("the recording lacks %s:\n%s", want, b)
		}
	}
	return rec
}

// answer plays the server at s_server's console: each line the client sent
// gets reply(line) back. It gives up quietly after 10 s without one (a
// replay that stopped at a difference sends no more).
func answer(srv *proc, reply func(string) string) {
	for _, m := range []string{"hello", "bye"} {
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(srv.stdout.String(), m+"\n"); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				return
			}
		}
		io.WriteString(srv.stdin, reply(m)+"\n")
	}
}

func TestDTLSReplayWithOpenSSL(t *testing.T) {
	need(t, "openssl")
	rec := recordDTLS(t)
	p := makePKI(t)
	for _, c := range []struct {
		name   string
		server []string // s_server's credentials
		client []string // s_client's
		replay []string // replay's as a client
		mock   []string // replay's as a server
	}{
		{"psk",
			[]string{"-nocert", "-psk", testPSK, "-psk_identity", testIdentity},
			[]string{"-psk", testPSK, "-psk_identity", testIdentity},
			[]string{"--psk", testPSK, "--psk-identity", testIdentity},
			[]string{"--psk", testPSK, "--psk-identity", testIdentity}},
		{"certificates",
			[]string{"-cert", p.srv, "-key", p.srvKey},
			[]string{"-CAfile", p.ca, "-verify_return_error"},
			[]string{"--ca", p.ca},
			[]string{"--cert", p.srv, "--key", p.srvKey}},
	} {
		t.Run(c.name+", replay as the client", func(t *testing.T) {
			srv, addr := dtlsServer(t, c.server...)
			go answer(srv, func(m string) string { return "ack:" + m })
			out, errOut, code := runWirecat(t, "", 20*time.Second, append([]string{"replay", rec, "--to", "dtls://" + addr, "--check"}, c.replay...)...)
			if code != 0 || out != "ack:hello\nack:bye\n" {
				t.Fatalf("exit %d, stdout %q: %s", code, out, errOut)
			}
		})
		t.Run(c.name+", replay as the client, a different answer", func(t *testing.T) {
			srv, addr := dtlsServer(t, c.server...)
			go answer(srv, func(m string) string { return "nak:" + m })
			_, errOut, code := runWirecat(t, "", 20*time.Second, append([]string{"replay", rec, "--to", "dtls://" + addr, "--check"}, c.replay...)...)
			if code == 0 || !strings.Contains(errOut, "nak:hello") {
				t.Fatalf("--check passed a different answer: exit %d: %s", code, errOut)
			}
		})
		t.Run(c.name+", replay as the server", func(t *testing.T) {
			port := freeUDPPort(t)
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			mock := start(t, "wirecat", append([]string{"replay", rec, "--as", "server", "--listen", "dtls://" + addr, "--once"}, c.mock...)...)
			waitUDP(t, port)
			cl := start(t, "openssl", append([]string{"s_client", "-dtls1_2", "-connect", addr, "-quiet", "-no_ign_eof"}, c.client...)...)
			for _, m := range []string{"hello", "bye"} {
				io.WriteString(cl.stdin, m+"\n")
				cl.waitOutput("ack:"+m+"\n", 10*time.Second)
			}
			cl.stdin.Close() // s_client sends close_notify, as the recorded client closed
			if code := mock.wait(5 * time.Second); code != 0 {
				t.Fatalf("the mock server exit %d: %s", code, mock.stderr)
			}
			if got := mock.stdout.String(); got != "hello\nbye\n" {
				t.Errorf("the mock server heard %q", got)
			}
		})
	}
}
