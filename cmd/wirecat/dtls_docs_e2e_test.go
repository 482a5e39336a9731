package main

// The DTLS replay examples of docs/dtls.md, run as printed (see
// docs_e2e_test.go).

import (
	"io"
	"time"
)

func init() {
	docCases = append(docCases, docCase{
		name: "dtls-replay",
		cmds: []string{
			"wirecat listen -k dtls://127.0.0.1:5684 --psk c0ffee --psk-identity s1 --exec 'sed -u s/^/ack:/' &",
			"echo hello | wirecat connect dtls://127.0.0.1:5684 --psk c0ffee --psk-identity s1 --record dtls.jsonl",
			"wirecat replay dtls.jsonl --to dtls://127.0.0.1:5684 --psk c0ffee --psk-identity s1 --check",
			"wirecat replay dtls.jsonl --as server --listen dtls://127.0.0.1:5685 --psk c0ffee --psk-identity s1 --once &",
			"openssl s_client -dtls1_2 -connect 127.0.0.1:5685 -psk c0ffee -psk_identity s1 -quiet",
		},
		run: func(e *docEnv, c []string) {
			t := e.t
			need(t, "openssl")
			lport, mport := e.udpPort(5684), e.udpPort(5685)
			e.start(c[0], nil)
			waitUDP(t, lport)
			if out := e.mustRun(c[1], ""); out != "ack:hello\n" {
				t.Fatalf("connect printed %q", out)
			}
			if out := e.mustRun(c[2], ""); out != "ack:hello\n" {
				t.Fatalf("replay --check printed %q", out)
			}
			mock := e.start(c[3], nil)
			waitUDP(t, mport)
			in := &pipeIn{}
			cl := e.start(c[4], in)
			io.WriteString(in.w, "hello\n")
			cl.waitOutput("ack:hello\n", 10*time.Second)
			mock.waitOutput("hello\n", 10*time.Second)
		},
	})
}
