package script

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
	"github.com/wirecat-dev/wirecat/link"
)

// mosquitto starts a broker on a free loopback port with the extra config
// lines and returns its address.
func mosquitto(t *testing.T, conf ...string) string {
	t.Helper()
	e2e.Need(t, "mosquitto")
	port := e2e.FreePort(t)
	cf := filepath.Join(t.TempDir(), "mosquitto.conf")
	lines := append([]string{fmt.Sprintf("listener %d 127.0.0.1", port)}, conf...)
	if len(conf) == 0 {
		lines = append(lines, "allow_anonymous true")
	}
	if err := os.WriteFile(cf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e2e.Start(t, "mosquitto", "-c", cf)
	e2e.WaitListen(t, port)
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// TestMQTTMosquitto: QoS 0, 1 and 2 publishes acknowledged by mosquitto,
// a retained message, receive() and a handler, for 3.1.1 and 5.
func TestMQTTMosquitto(t *testing.T) {
	addr := mosquitto(t)
	for _, v := range []int{4, 5} {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) {
			topic := fmt.Sprintf("t%d", v)
			src := fmt.Sprintf(`
local c = assert(mqtt.connect("%s", {version = %d, client_id = "test-%d"}))
print(c:subscribe("%s/q/#", 2))
print(c:publish("%s/q/a", "one", {qos = 1}))
print(c:publish("%s/q/b", "two", {qos = 2}))
print(c:publish("%s/q/c", "three"))
for i = 1, 3 do
  local m = assert(c:receive(2))
  print(m.topic, m.payload, m.qos, m.retain)
end
print(c:publish("%s/r", "kept", {qos = 1, retain = true}))
local got = 0
print(c:subscribe("%s/r", 1, function(m)
  print("handler", m.topic, m.payload, m.retain)
  got = got + 1
  if got == 1 then c:disconnect() end
end))
`, addr, v, v, topic, topic, topic, topic, topic, topic)
			r := run(t, src, 10*time.Second, nil)
			if r.err != nil {
				t.Fatalf("%v\n%s", r.err, r.errOut)
			}
			want := strings.Join([]string{"2", "true", "true", "true",
				topic + "/q/a\tone\t1\tfalse", topic + "/q/b\ttwo\t2\tfalse", topic + "/q/c\tthree\t0\tfalse",
				"true", "handler\t" + topic + "/r\tkept\ttrue", "1"}, "\n")
			// the handler may run before subscribe returns its granted QoS
			got := strings.TrimSpace(r.out)
			alt := strings.Replace(want, "handler\t"+topic+"/r\tkept\ttrue\n1", "1\nhandler\t"+topic+"/r\tkept\ttrue", 1)
			if got != want && got != alt {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestMQTTPeers: mosquitto_sub sees exactly what a device publishes, and a
// Python paho-mqtt client's message reaches a device's handler.
func TestMQTTPeers(t *testing.T) {
	addr := mosquitto(t)
	e2e.Need(t, "mosquitto_sub")
	port := addr[strings.LastIndex(addr, ":")+1:]
	sub := e2e.Start(t, "mosquitto_sub", "-p", port, "-h", "127.0.0.1", "-t", "peer/out", "-q", "1", "-C", "3", "-v", "-i", "sub1")
	time.Sleep(300 * time.Millisecond) // mosquitto_sub subscribed
	py := `
import sys, time
import paho.mqtt.publish as publish
time.sleep(0.5)
publish.single("peer/in", "from paho", qos=1, hostname="127.0.0.1", port=int(sys.argv[1]))
`
	pyfile := filepath.Join(t.TempDir(), "pub.py")
	os.WriteFile(pyfile, []byte(py), 0o600)
	pub := e2e.Start(t, "/usr/bin/python3", pyfile, port)
	src := fmt.Sprintf(`
local c = assert(mqtt.connect("%s"))
for i = 1, 3 do assert(c:publish("peer/out", "m" .. i .. "\0bin", {qos = i - 1})) end
assert(c:subscribe("peer/in", 1, function(m)
  print(m.topic, m.payload)
  c:disconnect()
end))
`, addr)
	r := run(t, src, 10*time.Second, nil)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.errOut)
	}
	if strings.TrimSpace(r.out) != "peer/in\tfrom paho" {
		t.Fatalf("device printed %q", r.out)
	}
	if sub.Wait(5*time.Second) != 0 || pub.Wait(5*time.Second) != 0 {
		t.Fatalf("peers failed")
	}
	want := "peer/out m1\x00bin\npeer/out m2\x00bin\npeer/out m3\x00bin\n"
	if sub.Stdout.String() != want {
		t.Fatalf("mosquitto_sub got %q, want %q", sub.Stdout.String(), want)
	}
}

// TestMQTTWill: a device stopped without DISCONNECT has its will published.
func TestMQTTWill(t *testing.T) {
	addr := mosquitto(t)
	e2e.Need(t, "mosquitto_sub")
	port := addr[strings.LastIndex(addr, ":")+1:]
	sub := e2e.Start(t, "mosquitto_sub", "-p", port, "-h", "127.0.0.1", "-t", "will/#", "-C", "1", "-v")
	time.Sleep(300 * time.Millisecond)
	src := fmt.Sprintf(`
local c = assert(mqtt.connect("%s", {will = {topic = "will/1", payload = "offline", qos = 1}}))
print("up")
sleep(60)
`, addr)
	r := run(t, src, time.Second, nil) // the deadline stops it, as Ctrl-C would
	if r.err != ErrStopped || r.out != "up\n" {
		t.Fatalf("device: %v %q", r.err, r.out)
	}
	if sub.Wait(5*time.Second) != 0 || sub.Stdout.String() != "will/1 offline\n" {
		t.Fatalf("mosquitto_sub got %q", sub.Stdout.String())
	}
}

// TestMQTTRefused: a CONNACK refusal names its reason code, 3.1.1 and 5.
func TestMQTTRefused(t *testing.T) {
	addr := mosquitto(t, "allow_anonymous false")
	src := fmt.Sprintf(`
print(mqtt.connect("%s"))
print(mqtt.connect("%s", {version = 5}))
`, addr, addr)
	r := run(t, src, 5*time.Second, nil)
	want := "nil\tconnection refused: not authorized (0x05)\nnil\tconnection refused: not authorized (0x87)\n"
	if r.err != nil || r.out != want {
		t.Fatalf("got %v %q, want %q", r.err, r.out, want)
	}
}

// fakeBroker accepts one connection at a time and runs serve on it.
func fakeBroker(t *testing.T, serve func(c net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for i := 0; i < 10; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return ln.Addr().String()
}

// readPacket reads one whole small packet.
func readPacket(c net.Conn) []byte {
	b := make([]byte, 2)
	if _, err := c.Read(b[:1]); err != nil {
		return nil
	}
	c.Read(b[1:2])
	body := make([]byte, b[1])
	n := 0
	for n < len(body) {
		m, err := c.Read(body[n:])
		if err != nil {
			return nil
		}
		n += m
	}
	return append(b, body...)
}

// TestMQTTBadBrokers: a broker that hangs up mid-handshake, one that never
// acknowledges a QoS 1 publish, and one that sends a malformed packet: the
// script sees a clear error each time.
func TestMQTTBadBrokers(t *testing.T) {
	connack := []byte{0x20, 2, 0, 0}
	for _, c := range []struct {
		name  string
		serve func(net.Conn)
		src   string
		want  string
	}{
		{"closes mid-handshake", func(c net.Conn) { readPacket(c) },
			`print(mqtt.connect(ADDR))`, "nil\tconnect: the broker closed the connection before its CONNACK"},
		{"no CONNACK", func(c net.Conn) { readPacket(c); time.Sleep(2 * time.Second) },
			`print(mqtt.connect(ADDR, {timeout = 0.3}))`, "nil\tconnect: no CONNACK within 300ms"},
		{"no PUBACK", func(c net.Conn) {
			readPacket(c)
			c.Write(connack)
			for readPacket(c) != nil {
			}
		}, `local c = assert(mqtt.connect(ADDR, {retry = 0.1, tries = 3}))
print(c:publish("a", "b", {qos = 1}))
print(c:connected())`, "nil\tno answer to PUBLISH 1 after 3 tries, 100ms apart\ntrue"},
		{"malformed packet", func(c net.Conn) {
			readPacket(c)
			c.Write(connack)
			readPacket(c)
			c.Write([]byte{0x36, 2, 0, 1}) // a PUBLISH with QoS 3
			time.Sleep(time.Second)
		}, `local c = assert(mqtt.connect(ADDR))
print(c:subscribe("a", 1))
print(c:receive(1))`, "nil\tmqtt: PUBLISH packet: protocol violation: qos out of range\nnil\tmqtt: PUBLISH packet: protocol violation: qos out of range"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := fakeBroker(t, c.serve)
			r := run(t, strings.ReplaceAll(c.src, "ADDR", fmt.Sprintf("%q", addr)), 5*time.Second, nil)
			if r.err != nil || strings.TrimSpace(r.out) != c.want {
				t.Fatalf("got %v\n%s\nwant\n%s", r.err, r.out, c.want)
			}
		})
	}
}

// TestMQTTWebSocket: mqtt.connect("ws://...") offers the mqtt subprotocol
// and speaks MQTT in binary messages, here through a ws listener (which
// requires the subprotocol) bridged to mosquitto.
func TestMQTTWebSocket(t *testing.T) {
	broker := mosquitto(t)
	a, err := link.Parse("ws://127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextTimeout(10 * time.Second)
	defer cancel()
	ln, err := link.Listen(ctx, a, &link.Options{WS: link.WSOptions{Subprotocol: "mqtt"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", broker)
			if err != nil {
				c.Close()
				return
			}
			go func() { io.Copy(b, c); b.Close() }()
			go func() { io.Copy(c, b); c.Close() }()
		}
	}()
	r := run(t, fmt.Sprintf(`
local c = assert(mqtt.connect("ws://%s"))
print(c:subscribe("ws/#", 1))
print(c:publish("ws/a", "over websocket", { qos = 1 }))
local m = assert(c:receive(2))
print(m.topic, m.payload)
c:disconnect()
`, ln.Addr().String()), 10*time.Second, nil)
	if r.err != nil || r.out != "1\ntrue\nws/a\tover websocket\n" {
		t.Fatalf("%v %q %s", r.err, r.out, r.errOut)
	}
}
