package main

// The protocol modules dial as net.connect does: simulate --proxy and
// --retry reach mqtt.connect (and http, coap, modbus).

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const mqttPublishOnce = `local c = assert(mqtt.connect(TARGET))
assert(c:publish("wirecat/proxy", "through " .. (args.via or "?"), { qos = 1 }))
c:disconnect()
print("published")
`

// mqtt.connect through microsocks (SOCKS5) to mosquitto; a dead proxy is the
// error, which shows the connection did go through the proxy.
func TestMQTTThroughSOCKS5Proxy(t *testing.T) {
	need(t, "mosquitto", "mosquitto_sub", "microsocks")
	bport, pport := freePort(t), freePort(t)
	start(t, "mosquitto", "-p", fmt.Sprint(bport))
	proxy := start(t, "microsocks", "-i", "127.0.0.1", "-p", fmt.Sprint(pport))
	waitListen(t, bport)
	waitListen(t, pport)
	sub := start(t, "mosquitto_sub", "-p", fmt.Sprint(bport), "-t", "wirecat/proxy", "-C", "1", "-W", "20")
	time.Sleep(300 * time.Millisecond) // the subscription is in place
	script := writeScript(t, mqttPublishOnce)
	broker := fmt.Sprintf("127.0.0.1:%d", bport)
	out, errOut, code := runWirecat(t, "", 30*time.Second, "simulate", script, "--connect", broker,
		"--proxy", fmt.Sprintf("socks5://127.0.0.1:%d", pport), "--arg", "via=socks5")
	if code != 0 || out != "published\n" {
		t.Fatalf("simulate: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code := sub.wait(20 * time.Second); code != 0 || sub.stdout.String() != "through socks5\n" {
		t.Fatalf("mosquitto_sub: exit %d, got %q", code, sub.stdout)
	}
	// microsocks logs each connection it carries
	waitFor(t, 5*time.Second, "microsocks to log the connection to the broker", func() bool {
		return strings.Contains(proxy.stderr.String()+proxy.stdout.String(), "connected to "+broker)
	})
	dead := freePort(t)
	_, errOut, code = runWirecat(t, "", 30*time.Second, "simulate", script, "--connect", broker,
		"--proxy", fmt.Sprintf("socks5://127.0.0.1:%d", dead))
	if code == 0 || !strings.Contains(errOut, fmt.Sprintf("proxy socks5://127.0.0.1:%d cannot be reached", dead)) {
		t.Fatalf("a dead proxy: exit %d, stderr %q", code, errOut)
	}
}

// --retry: a broker that starts a second after the device is waited for.
func TestMQTTRetryBrokerStartsLate(t *testing.T) {
	need(t, "mosquitto")
	bport := freePort(t)
	script := writeScript(t, mqttPublishOnce)
	broker := fmt.Sprintf("127.0.0.1:%d", bport)
	// without --retry: refused at once
	_, errOut, code := runWirecat(t, "", 20*time.Second, "simulate", script, "--connect", broker)
	if code == 0 || !strings.Contains(errOut, "connection refused") {
		t.Fatalf("no broker, no --retry: exit %d, stderr %q", code, errOut)
	}
	sim := start(t, "wirecat", "simulate", script, "--connect", broker, "--retry", "forever", "-v", "--duration", "30s")
	sim.waitStderr("attempt 2 failed", 10*time.Second)
	start(t, "mosquitto", "-p", fmt.Sprint(bport))
	if code := sim.wait(30 * time.Second); code != 0 || sim.stdout.String() != "published\n" {
		t.Fatalf("simulate --retry: exit %d, stdout %q, stderr %q", code, sim.stdout, sim.stderr)
	}
}

// -s: mqtt.connect and http.request connect from the source address given.
func TestModulesSourceAddress(t *testing.T) {
	need(t, "mosquitto", "python3")
	bport := freePort(t)
	broker := start(t, "mosquitto", "-v", "-p", fmt.Sprint(bport))
	waitListen(t, bport)
	script := writeScript(t, mqttPublishOnce)
	out, errOut, code := runWirecat(t, "", 30*time.Second, "simulate", script, "--connect", fmt.Sprintf("127.0.0.1:%d", bport), "-s", "127.0.0.2")
	if code != 0 || out != "published\n" {
		t.Fatalf("simulate -s: exit %d, %q, %q", code, out, errOut)
	}
	waitFor(t, 5*time.Second, "mosquitto to log a client from 127.0.0.2", func() bool {
		return strings.Contains(broker.stdout.String()+broker.stderr.String(), "New connection from 127.0.0.2")
	})
	// http: a server that answers with the address the request came from
	hport := freePort(t)
	start(t, "/usr/bin/python3", "-c", `
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = self.client_address[0].encode()
        self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
`, fmt.Sprint(hport))
	waitListen(t, hport)
	get := writeScript(t, fmt.Sprintf(`print(assert(http.get("http://127.0.0.1:%d/")).body)`, hport))
	out, errOut, code = runWirecat(t, "", 30*time.Second, "simulate", get, "-s", "127.0.0.3")
	if code != 0 || out != "127.0.0.3\n" {
		t.Fatalf("http with -s: exit %d, %q, %q", code, out, errOut)
	}
}

// http.request through microsocks (--proxy), and with --retry to a web
// server that starts late.
func TestHTTPProxyAndRetry(t *testing.T) {
	need(t, "microsocks", "python3")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "page"), []byte("late page\n"), 0o644)
	hport, pport := freePort(t), freePort(t)
	get := writeScript(t, fmt.Sprintf(`print(assert(http.get("http://127.0.0.1:%d/page")).body)`, hport))
	sim := start(t, "wirecat", "simulate", get, "--retry", "forever", "-v", "--duration", "30s")
	sim.waitStderr("attempt 2 failed", 10*time.Second)
	start(t, "/usr/bin/python3", "-m", "http.server", fmt.Sprint(hport), "--bind", "127.0.0.1", "--directory", dir)
	if code := sim.wait(30 * time.Second); code != 0 || sim.stdout.String() != "late page\n\n" {
		t.Fatalf("--retry: exit %d, %q, %q", code, sim.stdout, sim.stderr)
	}
	proxy := start(t, "microsocks", "-i", "127.0.0.1", "-p", fmt.Sprint(pport))
	waitListen(t, pport)
	out, errOut, code := runWirecat(t, "", 30*time.Second, "simulate", get, "--proxy", fmt.Sprintf("socks5://127.0.0.1:%d", pport))
	if code != 0 || out != "late page\n\n" {
		t.Fatalf("--proxy: exit %d, %q, %q", code, out, errOut)
	}
	waitFor(t, 5*time.Second, "microsocks to log the connection", func() bool {
		return strings.Contains(proxy.stderr.String()+proxy.stdout.String(), fmt.Sprintf("connected to 127.0.0.1:%d", hport))
	})
}
