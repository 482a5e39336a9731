package script

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/wirecat-dev/wirecat/internal/e2e"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/luamod/coap"
)

const coapRoutes = `local big = string.rep("0123456789", 300)
local srv = assert(coap.serve("127.0.0.1:%d", {
  ["/temp"] = "21.5",
  ["PUT /led"] = function(req) return "2.04", "led " .. req.payload end,
  ["/big"] = function(req) return big end,
}))`

// TestCoAPClientServer: a device's server and client, CON and NON,
// block-wise, 4.04.
func TestCoAPClientServer(t *testing.T) {
	port := e2e.FreeUDPPort(t)
	r := run(t, fmt.Sprintf(coapRoutes+`
local base = "coap://127.0.0.1:%d"
local r = assert(coap.request(base .. "/temp"))
print(r.code, r.payload)
r = assert(coap.request({ url = base .. "/led", method = "PUT", payload = "on", confirmable = false }))
print(r.code, r.payload)
r = assert(coap.request(base .. "/big"))
print(r.code, #r.payload, r.payload == big)
print(coap.request(base .. "/nope").code)
srv:close()
`, port, port), 5*time.Second, nil)
	want := "2.05\t21.5\n2.04\tled on\n2.05\t3000\ttrue\n4.04\n"
	if r.err != nil || r.out != want {
		t.Fatalf("%v %q %s", r.err, r.out, r.errOut)
	}
}

// TestCoAPPeers: libcoap's coap-client against a device (block-wise and an
// unknown critical option), and a device against libcoap's coap-server.
func TestCoAPPeers(t *testing.T) {
	e2e.Need(t, "coap-client-notls", "coap-server-notls")
	port := e2e.FreeUDPPort(t)
	p, err := Compile("coap.lua", []byte(fmt.Sprintf(coapRoutes+`
sleep(3)
srv:close()
`, port)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextTimeout(10 * time.Second)
		defer cancel()
		done <- p.Run(ctx, 1, &Env{Count: 1})
	}()
	e2e.WaitUDP(t, port)
	client := func(args ...string) string {
		b, err := exec.Command("coap-client-notls", append([]string{"-B", "3"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("coap-client %v: %v %s", args, err, b)
		}
		return strings.TrimSuffix(string(b), "\n")
	}
	url := fmt.Sprintf("coap://127.0.0.1:%d", port)
	if got := client("-m", "get", url+"/temp"); got != "21.5" {
		t.Errorf("GET /temp: %q", got)
	}
	if got := client("-m", "get", url+"/big"); got != strings.Repeat("0123456789", 300) {
		t.Errorf("GET /big (block-wise): %d bytes", len(got))
	}
	if got := client("-m", "put", "-e", "off", url+"/led"); got != "led off" {
		t.Errorf("PUT /led: %q", got)
	}
	if got := client("-m", "get", "-O", "65001,x", url+"/temp"); !strings.Contains(got, "4.02") {
		t.Errorf("an unknown critical option: %q", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	sport := e2e.FreeUDPPort(t)
	e2e.Start(t, "coap-server-notls", "-A", "127.0.0.1", "-p", fmt.Sprint(sport))
	e2e.WaitUDP(t, sport)
	r := run(t, fmt.Sprintf(`
local r = assert(coap.request("coap://127.0.0.1:%d/"))
print(r.code, r.payload:find("libcoap", 1, true) ~= nil)
r = assert(coap.request("coap://127.0.0.1:%d/time"))
print(r.code)
print(coap.request("coap://127.0.0.1:%d/nothing").code)
`, sport, sport, sport), 10*time.Second, nil)
	if r.err != nil || r.out != "2.05\ttrue\n2.05\n4.04\n" {
		t.Fatalf("%v %q %s", r.err, r.out, r.errOut)
	}
}

// TestCoAPBadServers: a lost first request (retransmitted), a separate
// response, a reset, an unknown critical option in a response, silence.
func TestCoAPBadServers(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		seen := map[string]bool{}
		b := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			req, err := coap.Decode(append([]byte{}, b[:n]...))
			if err != nil {
				continue
			}
			path, _ := req.Options.Path()
			path = strings.TrimPrefix(path, "/")
			reply := func(m *coap.Message) {
				w, _ := coap.Encode(m)
				pc.WriteTo(w, from)
			}
			switch path {
			case "lossy": // the first copy is lost
				if !seen[string(req.Token)] {
					seen[string(req.Token)] = true
					continue
				}
				reply(&coap.Message{Type: coap.ACK, MessageID: req.MessageID, Token: req.Token, Code: codes.Content, Payload: []byte("second try")})
			case "separate":
				reply(&coap.Message{Type: coap.ACK, MessageID: req.MessageID, Code: codes.Empty})
				time.Sleep(50 * time.Millisecond)
				reply(&coap.Message{Type: coap.CON, MessageID: 77, Token: req.Token, Code: codes.Content, Payload: []byte("later")})
			case "reset":
				reply(&coap.Message{Type: coap.RST, MessageID: req.MessageID, Code: codes.Empty})
			case "critical":
				reply(&coap.Message{Type: coap.ACK, MessageID: req.MessageID, Token: req.Token, Code: codes.Content,
					Options: message.Options{{ID: 65001, Value: []byte("x")}}})
			}
		}
	}()
	base := "coap://" + pc.LocalAddr().String()
	r := run(t, strings.ReplaceAll(`
print(coap.request({ url = BASE .. "/lossy", retry = 0.1 }).payload)
print(coap.request(BASE .. "/separate").payload)
print(coap.request(BASE .. "/reset"))
print(coap.request(BASE .. "/critical"))
print(coap.request({ url = BASE .. "/silent", retry = 0.05, timeout = 0.5 }))
`, "BASE", fmt.Sprintf("%q", base)), 10*time.Second, nil)
	want := `second try
later
nil	the server reset the exchange (RST)
nil	the response has an unknown critical option 65001
nil	no response within the timeout
`
	if r.err != nil || r.out != want {
		t.Fatalf("%v\n%s\nwant\n%s%s", r.err, r.out, want, r.errOut)
	}
}

// TestCoAPSecure: coaps:// (DTLS with a pre-shared key) to libcoap's
// coap-server-openssl.
func TestCoAPSecure(t *testing.T) {
	e2e.Need(t, "coap-server-openssl")
	port := e2e.FreeUDPPort(t)
	e2e.Start(t, "coap-server-openssl", "-A", "127.0.0.1", "-p", fmt.Sprint(port-1), "-k", "secretkey")
	e2e.WaitUDP(t, port)
	r := run(t, fmt.Sprintf(`
local r = assert(coap.request({ url = "coaps://127.0.0.1:%d/", psk = "7365637265746b6579", psk_identity = "dev1" }))
print(r.code, r.payload:find("libcoap", 1, true) ~= nil)
`, port), 10*time.Second, nil)
	if r.err != nil || r.out != "2.05\ttrue\n" {
		t.Fatalf("%v %q %s", r.err, r.out, r.errOut)
	}
}

// TestCoAPObserve: coap.observe of libcoap's /time, which notifies every
// second, until the handler stops it; a resource without observe says so.
func TestCoAPObserve(t *testing.T) {
	e2e.Need(t, "coap-server-notls")
	port := e2e.FreeUDPPort(t)
	e2e.Start(t, "coap-server-notls", "-A", "127.0.0.1", "-p", fmt.Sprint(port))
	e2e.WaitUDP(t, port)
	r := run(t, fmt.Sprintf(`
print(coap.observe("coap://127.0.0.1:%d/", function() end))
local n, h = 0, nil
h = assert(coap.observe("coap://127.0.0.1:%d/time", function(r)
  n = n + 1
  print(n, r.code, r.observe ~= nil)
  if n == 3 then h:stop() end
end))
`, port, port), 10*time.Second, nil)
	want := "nil\tthe server does not offer / to observe (2.05, no Observe option)\n1\t2.05\ttrue\n2\t2.05\ttrue\n3\t2.05\ttrue\n"
	if r.err != nil || r.out != want {
		t.Fatalf("%v %q %s", r.err, r.out, r.errOut)
	}
}

// TestCoAPServerObserve: a sensor device pushes readings with coap.notify
// to its own coap.observe client, which deregisters on stop, and to
// libcoap's coap-client -s.
func TestCoAPServerObserve(t *testing.T) {
	port := e2e.FreeUDPPort(t)
	src := fmt.Sprintf(`
local temp = 20
local srv = assert(coap.serve("127.0.0.1:%d", { ["/temp"] = function() return string.format("%%.1f", temp) end }))
local tick = every(0.1, function()
  temp = temp + 0.5
  coap.notify("/temp", string.format("%%.1f", temp))
end)
local n, h = 0, nil
h = assert(coap.observe("coap://127.0.0.1:%d/temp", function(r)
  n = n + 1
  print(n, r.code, r.observe, r.payload)
  if n == 3 then h:stop() end
end))
sleep(tonumber(args.wait))
print("observers left", coap.notify("/temp", "x"))
tick:stop()
srv:close()
`, port, port)
	r := run(t, src, 10*time.Second, &Env{Args: map[string]string{"wait": "0.6"}})
	want := "1\t2.05\t1\t20.0\n2\t2.05\t2\t20.5\n3\t2.05\t3\t21.0\nobservers left\t0\n"
	if r.err != nil || r.out != want {
		t.Fatalf("%v %q %s", r.err, r.out, r.errOut)
	}
	e2e.Need(t, "coap-client-notls")
	p, err := Compile("sensor.lua", []byte(src))
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
	b, err := exec.Command("coap-client-notls", "-B", "3", "-m", "get", "-s", "1", fmt.Sprintf("coap://127.0.0.1:%d/temp", port)).CombinedOutput()
	if err != nil {
		t.Fatalf("coap-client -s: %v %s", err, b)
	}
	if got := strings.Count(string(b), "."); got < 5 {
		t.Errorf("coap-client -s 1 saw %d readings in a second, want about 10: %q", got, b)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCoAPServeDTLS: coap.serve on dtls:// answers request after request
// on one association (a client that keeps its DTLS session), and
// coap.request over coaps:// reaches it.
func TestCoAPServeDTLS(t *testing.T) {
	src := `
local srv = assert(coap.serve("dtls://127.0.0.1:0", { psk = "c0ffee", psk_identity = "dev1" },
  { ["/temp"] = "21.5" }))
print(srv:addr())
local r = assert(coap.request({ url = "coaps://" .. srv:addr() .. "/temp", psk = "c0ffee", psk_identity = "dev1" }))
print(r.code, r.payload)
sleep(2)
srv:close()
`
	p, err := Compile("dtls.lua", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuf
	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextTimeout(10 * time.Second)
		defer cancel()
		done <- p.Run(ctx, 1, &Env{Count: 1, Stdout: &out})
	}()
	e2e.WaitFor(t, 5*time.Second, "the answer over coaps", func() bool { return strings.Count(out.String(), "\n") >= 2 })
	addr, rest, _ := strings.Cut(out.String(), "\n")
	if rest != "2.05\t21.5\n" {
		t.Fatalf("coap.request over coaps: %q", rest)
	}
	a, err := link.Parse("dtls://"+addr, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextTimeout(5 * time.Second)
	defer cancel()
	nc, err := link.Dial(ctx, a, &link.Options{TLS: link.TLSOptions{PSK: "c0ffee", PSKIdentity: "dev1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	opts := message.Options{}
	opts, _, _ = opts.SetPath(make([]byte, 16), "/temp")
	b := make([]byte, 1500)
	for i := range 3 { // three requests, one association
		w, _ := coap.Encode(&coap.Message{Type: coap.CON, Code: codes.GET, MessageID: int32(100 + i), Token: []byte{byte(i)}, Options: opts})
		nc.Write(w)
		nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := nc.Read(b)
		if err != nil {
			t.Fatalf("request %d on the association: %v", i+1, err)
		}
		r, err := coap.Decode(b[:n])
		if err != nil || r.MessageID != int32(100+i) || string(r.Payload) != "21.5" {
			t.Fatalf("request %d: %v %+v", i+1, err, r)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
