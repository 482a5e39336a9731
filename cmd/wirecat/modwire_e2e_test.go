package main

// A device's HTTP and CoAP exchanges (the http and coap Lua modules) are
// connections like its others: -o text shows them both ways, --record keeps
// their exact bytes, `wirecat show` prints them and `wirecat replay` plays
// them back.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHTTPClientRecordedShowReplay(t *testing.T) {
	need(t, "python3", "curl")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from python\n"), 0o644)
	port := freePort(t)
	start(t, "/usr/bin/python3", "-m", "http.server", fmt.Sprint(port), "--bind", "127.0.0.1", "--directory", dir)
	waitListen(t, port)
	rec := filepath.Join(dir, "get.wcap")
	script := writeScript(t, `local r = assert(http.get("http://`+fmt.Sprintf("127.0.0.1:%d", port)+`/hello.txt"))
print(r.status, r.body)`)
	out, errOut, code := runWirecat(t, "", 30*time.Second, "simulate", script, "-o", "text", "--record", rec)
	if code != 0 {
		t.Fatalf("simulate: exit %d, stderr %q", code, errOut)
	}
	// -o text: the request going out and the response coming in
	wantContains(t, "simulate -o text", out, "→ GET /hello.txt HTTP/1.1\\r\\n", "← HTTP/1.0 200 OK\\r\\n", "hello from python\\n", "200\thello from python")

	show, errOut, code := runWirecat(t, "", 20*time.Second, "show", rec)
	if code != 0 {
		t.Fatalf("show: exit %d, stderr %q", code, errOut)
	}
	wantContains(t, "wirecat show", show, "open tcp (wirecat is the client)", "→ GET /hello.txt HTTP/1.1\\r\\nHost: 127.0.0.1:",
		"← HTTP/1.0 200 OK\\r\\n", "Content-Length: 18\\r\\n", "\\r\\n\\r\\nhello from python\\n", "closed by peer")

	// The recorded server as a mock: curl gets the recorded response.
	mport := freePort(t)
	mock := start(t, "wirecat", "replay", rec, "--as", "server", "--listen", fmt.Sprintf("127.0.0.1:%d", mport), "--once")
	waitListen(t, mport)
	body, err := exec.Command("curl", "-s", "--max-time", "10", fmt.Sprintf("http://127.0.0.1:%d/hello.txt", mport)).Output()
	if err != nil || string(body) != "hello from python\n" {
		t.Fatalf("curl from the replayed server: %q, %v", body, err)
	}
	mock.wait(10 * time.Second)
}

func TestCoAPClientAndObserveRecordedShow(t *testing.T) {
	need(t, "coap-server-openssl", "coap-client-openssl")
	dir := t.TempDir()
	// coap.request to libcoap's example server
	port := freeUDPPort(t)
	start(t, "coap-server-openssl", "-A", "127.0.0.1", "-p", fmt.Sprint(port))
	waitUDP(t, port)
	rec := filepath.Join(dir, "coap.wcap")
	script := writeScript(t, `local r = assert(coap.request("coap://127.0.0.1:`+fmt.Sprint(port)+`/"))
print(r.code, #r.payload > 0)`)
	out, errOut, code := runWirecat(t, "", 30*time.Second, "simulate", script, "-o", "text", "--record", rec)
	if code != 0 || !strings.Contains(out, "2.05\ttrue") {
		t.Fatalf("simulate: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	show, _, code := runWirecat(t, "", 20*time.Second, "show", rec)
	if code != 0 {
		t.Fatalf("show: exit %d", code)
	}
	// the request (CON GET, byte 0x40 then 0x01) and the piggybacked 2.05
	// on an ACK (0x60 | token length, then 0x45) with libcoap's text
	wantContains(t, "wirecat show", show, "open udp (wirecat is the client)", "→ D\\x01", "← dE", "libcoap", "closed by wirecat")

	// coap.serve's notifications to libcoap's observing client
	sport := freeUDPPort(t)
	rec2 := filepath.Join(dir, "serve.wcap")
	srv := writeScript(t, fmt.Sprintf(`local n = 0
coap.serve("127.0.0.1:%d", { ["/temp"] = function() n = n + 1; return "get-" .. n end })
every(0.2, function() coap.notify("/temp", "notify-" .. now()) end)`, sport))
	sim := start(t, "wirecat", "simulate", srv, "--record", rec2, "--duration", "3s")
	waitUDP(t, sport)
	got, _ := exec.Command("coap-client-openssl", "-s", "1", "-B", "2", "-m", "get", fmt.Sprintf("coap://127.0.0.1:%d/temp", sport)).Output()
	if !strings.HasPrefix(string(got), "get-1") || !strings.Contains(string(got), "notify-") {
		t.Fatalf("coap-client printed %q: want get-1 (the route runs once per request), then notifications", got)
	}
	if code := sim.wait(20 * time.Second); code != 0 {
		t.Fatalf("simulate exit %d", code)
	}
	show, _, _ = runWirecat(t, "", 20*time.Second, "show", rec2)
	wantContains(t, "wirecat show", show, "open udp (wirecat is the server)", "get-1", "notify-")
	if n := strings.Count(show, "notify-"); n < 2 {
		t.Errorf("%d notifications recorded, want at least 2:\n%s", n, show)
	}
}
