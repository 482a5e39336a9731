package main

// The observe-over-DTLS example of docs/lua.md (scripts/coap-sensor.lua
// pushing readings to libcoap's coap-client), run as printed (see
// docs_e2e_test.go).

import (
	"regexp"
	"time"
)

func init() {
	docCases = append(docCases, docCase{
		name: "coap-observe-dtls",
		cmds: []string{"wirecat simulate scripts/coap-sensor.lua --arg addr=127.0.0.1:5684 --arg interval=0.5",
			"coap-client-openssl -m get -u sensor-1 -k 'secret!' -s 3 coaps://127.0.0.1:5684/temperature"},
		run: func(e *docEnv, c []string) {
			t := e.t
			need(t, "coap-client-openssl")
			port := e.udpPort(5684)
			sim := e.start(c[0], nil)
			waitUDP(t, port)
			start := time.Now()
			out := e.mustRun(c[1], "")
			// the reading at registration, then one every 0.5 s for 3 s
			// (libcoap prints the payloads one after another: "21.021.1")
			n := len(regexp.MustCompile(`\d+\.\d`).FindAllString(out, -1))
			if n < 5 || n > 8 {
				t.Fatalf("coap-client -s 3 printed %d readings in %v, want the first and one each 0.5 s: %q", n, time.Since(start), out)
			}
			sim.waitStderr("GET /temperature (observe)", 5*time.Second)
			sim.interrupt()
			sim.wait(10 * time.Second)
		},
	})
}
