package script

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/internal/e2e"
	"github.com/wirecat-dev/wirecat/luamod/coap"
)

// coapDTLSSensor is a sensor behind dtls:// with a pre-shared key ("secret!"
// as identity sensor-1) that pushes a reading to its observers every 0.1 s
// and serves a 3000-byte /log block-wise; it observes itself over coaps://
// (three notifications, then stop) and runs for args.wait seconds.
const coapDTLSSensor = `
local psk, id = "73656372657421", "sensor-1"
local temp = 20
local big = string.rep("0123456789", 300)
local srv = assert(coap.serve("dtls://127.0.0.1:%d", { psk = psk, psk_identity = id }, {
  ["/temp"] = function() return string.format("%%.1f", temp) end,
  ["/log"] = big,
}))
local tick = every(0.1, function()
  temp = temp + 0.5
  coap.notify("/temp", string.format("%%.1f", temp))
end)
local base = "coaps://127.0.0.1:%d"
local r = assert(coap.request({ url = base .. "/log", psk = psk, psk_identity = id }))
print("log", r.code, #r.payload, r.payload == big)
local n, h = 0, nil
h = assert(coap.observe({ url = base .. "/temp", psk = psk, psk_identity = id }, function(r)
  n = n + 1
  print(n, r.code, r.observe, r.payload)
  if n == 3 then h:stop() end
end))
sleep(tonumber(args.wait))
tick:stop()
print("observers left", coap.notify("/temp", "x"))
srv:close()
`

// TestCoAPDTLSObserve: over dtls://, a device's coap.notify reaches its own
// coap.observe client, which deregisters on stop (a GET with Observe 1),
// and libcoap's coap-client-openssl -s with a PSK; block-wise answers go
// over DTLS to both clients.
func TestCoAPDTLSObserve(t *testing.T) {
	port := e2e.FreeUDPPort(t)
	src := fmt.Sprintf(coapDTLSSensor, port, port)
	r := run(t, src, 15*time.Second, &Env{Args: map[string]string{"wait": "1"}})
	// the observer's first answer is the reading at registration: the
	// ticks that ran during the block-wise request changed it, so only
	// the sequence is fixed, and each notification is 0.5 above the last
	lines := strings.Split(r.out, "\n")
	if r.err != nil || len(lines) != 6 || lines[0] != "log\t2.05\t3000\ttrue" || lines[4] != "observers left\t0" {
		t.Fatalf("%v %q %s", r.err, r.out, r.errOut)
	}
	var prev float64
	for i, l := range lines[1:4] {
		var n, seq int
		var code string
		var temp float64
		if _, err := fmt.Sscanf(l, "%d\t%s\t%d\t%g", &n, &code, &seq, &temp); err != nil || n != i+1 || code != "2.05" {
			t.Fatalf("notification %d: %q (%v) in %q", i+1, l, err, r.out)
		}
		if i > 0 && (seq <= 1 || temp != prev+0.5) {
			t.Fatalf("notification %d: %q after %g in %q", i+1, l, prev, r.out)
		}
		prev = temp
	}

	e2e.Need(t, "coap-client-openssl")
	p, err := Compile("sensor.lua", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextTimeout(15 * time.Second)
		defer cancel()
		done <- p.Run(ctx, 1, &Env{Count: 1, Args: map[string]string{"wait": "4"}})
	}()
	e2e.WaitUDP(t, port)
	url := fmt.Sprintf("coaps://127.0.0.1:%d", port)
	b, err := exec.Command("coap-client-openssl", "-B", "3", "-k", "secret!", "-u", "sensor-1", "-m", "get", "-s", "1", url+"/temp").CombinedOutput()
	if err != nil {
		t.Fatalf("coap-client-openssl -s: %v %s", err, b)
	}
	if got := strings.Count(string(b), "."); got < 5 {
		t.Errorf("coap-client-openssl -s 1 saw %d readings in a second over DTLS, want about 10: %q", got, b)
	}
	// block-wise: the default (1024-byte blocks) and 64-byte ones the client asks for
	for _, args := range [][]string{nil, {"-b", "64"}} {
		args = append(append([]string{"-B", "3", "-k", "secret!", "-u", "sensor-1"}, args...), url+"/log")
		b, err = exec.Command("coap-client-openssl", args...).Output()
		if err != nil || strings.TrimSpace(string(b)) != strings.Repeat("0123456789", 300) {
			t.Errorf("coap-client-openssl %v: %v, %d bytes %.60q", args, err, len(b), b)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCoAPObserveSecure: coap.observe over coaps:// of libcoap's
// coap-server-openssl (PSK), whose /time notifies every second.
func TestCoAPObserveSecure(t *testing.T) {
	e2e.Need(t, "coap-server-openssl")
	port := e2e.FreeUDPPort(t)
	e2e.Start(t, "coap-server-openssl", "-A", "127.0.0.1", "-p", fmt.Sprint(port-1), "-k", "secretkey")
	e2e.WaitUDP(t, port)
	r := run(t, fmt.Sprintf(`
local url = "coaps://127.0.0.1:%d/time"
local n, h = 0, nil
h = assert(coap.observe({ url = url, psk = "7365637265746b6579", psk_identity = "dev1" }, function(r)
  n = n + 1
  print(n, r.code, r.observe ~= nil, #r.payload > 0)
  if n == 2 then h:stop() end
end))
`, port), 10*time.Second, nil)
	want := "1\t2.05\ttrue\ttrue\n2\t2.05\ttrue\ttrue\n"
	if r.err != nil || r.out != want {
		t.Fatalf("%v %q %s", r.err, r.out, r.errOut)
	}
}

// TestCoAPObserversBounded: a device keeps at most 1024 observers, and the
// next is answered without Observe (with one warning); observers that leave
// their confirmable notifications unacknowledged (a client gone without a
// word) are forgotten, while one that acknowledges stays.
func TestCoAPObserversBounded(t *testing.T) {
	port := e2e.FreeUDPPort(t)
	src := fmt.Sprintf(`
local go = false
local srv = assert(coap.serve("127.0.0.1:%d", { ["/t"] = "0", ["POST /go"] = function() go = true; return "2.04", "" end }))
while not go do sleep(0.01) end
for i = 1, 40 do
  print(coap.notify("/t", tostring(i)))
  sleep(0.01)
end
srv:close()
`, port)
	p, err := Compile("bound.lua", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuf
	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextTimeout(20 * time.Second)
		defer cancel()
		done <- p.Run(ctx, 1, &Env{Count: 1, Stdout: &out, Stderr: &errOut})
	}()
	e2e.WaitUDP(t, port)
	dial := func() *net.UDPConn {
		c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	get := func(c *net.UDPConn, token uint16, code codes.Code, path string, observe bool) *coap.Message {
		opts := message.Options{}
		opts, _, _ = opts.SetPath(make([]byte, 16), path)
		if observe {
			opts, _, _ = opts.SetObserve(make([]byte, 4), 0)
		}
		w, _ := coap.Encode(&coap.Message{Type: coap.CON, Code: code, MessageID: int32(token), Token: []byte{byte(token >> 8), byte(token)}, Options: opts})
		b := make([]byte, 1500)
		for range 3 {
			c.Write(w)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := c.Read(b)
			if err != nil {
				continue
			}
			if r, err := coap.Decode(b[:n]); err == nil && r.MessageID == int32(token) {
				return r
			}
		}
		t.Fatalf("no answer to request %d", token)
		return nil
	}
	live, dead := dial(), dial()
	defer live.Close()
	if _, err := get(live, 1, codes.GET, "/t", true).Options.Observe(); err != nil {
		t.Fatal("the first observer is not registered")
	}
	for i := range 1024 {
		_, err := get(dead, uint16(100+i), codes.GET, "/t", true).Options.Observe()
		if i < 1023 && err != nil {
			t.Fatalf("observer %d of 1024 not registered", i+2)
		}
		if i == 1023 && err == nil {
			t.Fatal("observer 1025 answered with Observe: over the bound")
		}
	}
	dead.Close() // its notifications go unanswered from now on
	acks := make(chan int, 1)
	go func() { // the live observer acknowledges its confirmable notifications
		b, n := make([]byte, 1500), 0
		for {
			live.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, err := live.Read(b)
			if err != nil {
				acks <- n
				return
			}
			if r, err := coap.Decode(b[:k]); err == nil && r.Type == coap.CON {
				w, _ := coap.Encode(&coap.Message{Type: coap.ACK, Code: codes.Empty, MessageID: r.MessageID})
				live.Write(w)
				n++
			}
		}
	}()
	get(dial(), 9, codes.POST, "/go", false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	counts := strings.Fields(out.String())
	t.Logf("observers reached by each notification: %v", counts)
	if len(counts) != 40 || counts[0] != "1024" || counts[39] != "1" {
		t.Fatalf("observers reached by each notification: %v", counts)
	}
	if n := strings.Count(errOut.String(), "the limit"); n != 1 || !strings.Contains(errOut.String(), "answered without observe: the device has 1024 observers") {
		t.Fatalf("want one warning of the bound, got %q", errOut.String())
	}
	live.Close()
	if n := <-acks; n < 4 {
		t.Fatalf("the live observer acknowledged %d confirmable notifications of 40", n)
	}
}

// closeSink counts the Close events of a transport.
type closeSink struct {
	tr string
	n  atomic.Int64
}

func (s *closeSink) Emit(e *event.Event) error {
	if e.Kind == event.Close && e.Transport == s.tr {
		s.n.Add(1)
	}
	return nil
}

// TestCoAPDTLSDeadObserver: libcoap's coap-client-openssl observing over
// DTLS is killed (no close_notify, no RST): its confirmable notifications
// go unacknowledged, so the device forgets it and ends its association.
func TestCoAPDTLSDeadObserver(t *testing.T) {
	e2e.Need(t, "coap-client-openssl")
	port := e2e.FreeUDPPort(t)
	src := fmt.Sprintf(`
local srv = assert(coap.serve("dtls://127.0.0.1:%d", { psk = "73656372657421", psk_identity = "sensor-1" },
  { ["/temp"] = "20.0" }))
local tick = every(0.05, function() print(coap.notify("/temp", "21.0")) end)
sleep(tonumber(args.wait))
tick:stop()
srv:close()
`, port)
	p, err := Compile("dead.lua", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuf
	sink := &closeSink{tr: "dtls"}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextTimeout(20 * time.Second)
		defer cancel()
		done <- p.Run(ctx, 1, &Env{Count: 1, Stdout: &out, Sink: sink, Args: map[string]string{"wait": "6"}})
	}()
	e2e.WaitUDP(t, port)
	client := exec.Command("coap-client-openssl", "-k", "secret!", "-u", "sensor-1", "-s", "30", fmt.Sprintf("coaps://127.0.0.1:%d/temp", port))
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	e2e.WaitFor(t, 5*time.Second, "the client observing", func() bool { return strings.Contains(out.String(), "1\n") })
	client.Process.Kill()
	client.Wait()
	killed := time.Now()
	// every 8th notification is confirmable; the second left unanswered
	// after one already was forgets it: within 24 notifications (1.2 s)
	e2e.WaitFor(t, 4*time.Second, "the dead observer forgotten", func() bool {
		l := strings.Fields(out.String())
		return len(l) > 0 && l[len(l)-1] == "0"
	})
	t.Logf("the killed observer was forgotten %v after its end", time.Since(killed).Round(10*time.Millisecond))
	e2e.WaitFor(t, 2*time.Second, "its association ended", func() bool { return sink.n.Load() >= 1 })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCoAPObserveBlockwise: an answer and notifications over one block
// reach coap.observe whole (the further blocks fetched with GETs of their
// own), over UDP and over DTLS, and reach libcoap's coap-client -s over DTLS.
func TestCoAPObserveBlockwise(t *testing.T) {
	const src = `
local opts = { psk = "73656372657421", psk_identity = "sensor-1" }
local n = 0
local function log() return string.rep(string.char(65 + n), 2500) end
local addr = "%s://127.0.0.1:%d"
local srv = assert(coap.serve(addr, addr:find("^dtls") and opts or {}, { ["/log"] = log }))
local tick = every(0.1, function()
  n = n + 1
  coap.notify("/log", log())
end)
local got, h = 0, nil
if args.self then
  local url = "%s://127.0.0.1:%d/log"
  h = assert(coap.observe(url:find("^coaps") and { url = url, psk = opts.psk, psk_identity = opts.psk_identity } or url, function(r)
    got = got + 1
    print(#r.payload, r.payload == string.rep(r.payload:sub(1, 1), 2500))
    if got == 3 then h:stop() end
  end))
end
sleep(tonumber(args.wait))
tick:stop()
srv:close()
`
	for _, sc := range [][2]string{{"udp", "coap"}, {"dtls", "coaps"}} {
		port := e2e.FreeUDPPort(t)
		r := run(t, fmt.Sprintf(src, sc[0], port, sc[1], port), 10*time.Second, &Env{Args: map[string]string{"wait": "1", "self": "1"}})
		if want := "2500\ttrue\n2500\ttrue\n2500\ttrue\n"; r.err != nil || r.out != want {
			t.Fatalf("%s: %v %q %s", sc[0], r.err, r.out, r.errOut)
		}
	}
	e2e.Need(t, "coap-client-openssl")
	port := e2e.FreeUDPPort(t)
	p, err := Compile("log.lua", []byte(fmt.Sprintf(src, "dtls", port, "coaps", port)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextTimeout(10 * time.Second)
		defer cancel()
		done <- p.Run(ctx, 1, &Env{Count: 1, Args: map[string]string{"wait": "2.5"}})
	}()
	e2e.WaitUDP(t, port)
	b, err := exec.Command("coap-client-openssl", "-B", "3", "-k", "secret!", "-u", "sensor-1", "-s", "1",
		fmt.Sprintf("coaps://127.0.0.1:%d/log", port)).Output()
	if err != nil {
		t.Fatalf("coap-client-openssl -s: %v %.80q", err, b)
	}
	// each notification whole: 2500 of one letter, the letters in order
	runs, prev := 0, byte(0)
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && b[j] == b[i] {
			j++
		}
		if b[i] != '\n' {
			if (j-i)%2500 != 0 || b[i] < prev {
				t.Fatalf("coap-client-openssl -s printed %d of %q at %d (after %q): %.100q", j-i, b[i], i, prev, b)
			}
			runs, prev = runs+1, b[i]
		}
		i = j
	}
	if runs < 5 {
		t.Errorf("coap-client-openssl -s 1 saw %d notifications of 2500 bytes in a second, want about 10", runs)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
