package chaos

// Issue 13, CoAP: a device serving CoAP answers a load generator on
// loopback (requests a second), and garbage datagrams do not stop it.

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
	"github.com/wirecat-dev/wirecat/luamod/coap"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
)

func TestCoAPServerRate(t *testing.T) {
	senders, run, min := 16, 2*time.Second, 1000.0 // short: a shared CI machine
	if *soak {
		senders, run, min = 64, 10*time.Second, 20000
	}
	port := e2e.FreeUDPPort(t)
	script := writeFile(t, "coap.lua", fmt.Sprintf(`
local n = 0
assert(coap.serve("127.0.0.1:%d", {
  ["/temp"] = function(req) n = n + 1; return "21.5" end,
}))
`, port))
	p := e2e.Start(t, "wirecat", "simulate", script)
	e2e.WaitUDP(t, port)
	// each sender: a socket, CON GETs one after another; garbage in between
	var done atomic.Int64
	var bad atomic.Int64
	stop := time.Now().Add(run)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			b := make([]byte, 1500)
			// The request is encoded once by the codec; each send patches
			// its message id and token in place, and an answer is checked
			// on its bytes (ACK, 2.05, the id, the payload): on a 2-core
			// machine a generator decoding every datagram takes the CPU
			// the server is measured with.
			opts := message.Options{}
			buf := make([]byte, 32)
			opts, _, _ = opts.SetPath(buf, "/temp")
			w, err := coap.Encode(&coap.Message{Type: coap.CON, Code: codes.GET, Token: []byte{byte(i), 0, 0}, Options: opts})
			if err != nil {
				t.Error(err)
				return
			}
			for k := 0; time.Now().Before(stop); k++ {
				if k%100 == 0 {
					c.Write([]byte{0x40, 0x01}) // truncated: the server must go on
				}
				mid := uint16(i*7919 + k)
				w[2], w[3], w[5], w[6] = byte(mid>>8), byte(mid), byte(k), byte(k>>8)
				c.Write(w)
				c.SetReadDeadline(time.Now().Add(time.Second))
				for {
					n, err := c.Read(b)
					if err != nil {
						bad.Add(1) // lost: counted, and on to the next
						break
					}
					if n < 4 || b[2] != byte(mid>>8) || b[3] != byte(mid) {
						continue // an answer to an earlier, lost request
					}
					if b[0]>>4 == 0x6 && b[1] == byte(codes.Content) && bytes.HasSuffix(b[:n], []byte{0xff, '2', '1', '.', '5'}) &&
						bytes.Equal(b[4:4+b[0]&0xf], w[4:7]) {
						done.Add(1)
					} else {
						bad.Add(1)
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	rate := float64(done.Load()) / run.Seconds()
	figure(t, "coap-server", "a device serving CoAP: %.0f requests/s answered (%d senders, CON GET, %v), %d lost or wrong", rate, senders, run, bad.Load())
	if rate < min && !raceEnabled {
		t.Errorf("%.0f requests/s, under %.0f", rate, min)
	}
	if bad.Load() > done.Load()/100 {
		t.Errorf("%d requests lost or answered wrong", bad.Load())
	}
	if took := p.Signal(syscall.SIGINT, 2*time.Second); took > time.Second {
		t.Errorf("SIGINT took %v to end the server", took)
	}
}

// TestCoAPDTLSObservers: a fleet of devices observes one sensor over
// coaps:// (a DTLS association each, a pre-shared key): every observer
// gets the notifications, and when the fleet stops (each handle:stop a
// deregistration), the sensor has no observers left.
func TestCoAPDTLSObservers(t *testing.T) {
	n, run := 20, 2.0
	if *soak {
		n, run = 200, 10
	}
	port := e2e.FreeUDPPort(t)
	sensor := writeFile(t, "sensor.lua", fmt.Sprintf(`
local srv = assert(coap.serve("dtls://127.0.0.1:%d", { psk = "c0ffee", psk_identity = "dev" },
  { ["/temp"] = "20.0" }))
local last, sent = -1, 0
every(0.1, function()
  local k = coap.notify("/temp", "21.0")
  sent = sent + k
  if k ~= last then print("observers", k); last = k end
end)
`, port))
	var out e2e.Buffer
	p := e2e.StartWith(t, nil, &out, "wirecat", "simulate", sensor)
	e2e.WaitUDP(t, port)
	observer := writeFile(t, "observer.lua", fmt.Sprintf(`
local got, h = 0, nil
h = assert(coap.observe({ url = "coaps://127.0.0.1:%d/temp", psk = "c0ffee", psk_identity = "dev", timeout = 30 },
  function(r) got = got + 1 end))
sleep(%g)
h:stop()
print("got", got)
`, port, run))
	start := time.Now()
	stdout, stderr, code := e2e.Run(t, "", time.Duration(run+60)*time.Second, "simulate", "-n", itoa(n), "--ramp", "1s", observer)
	took := time.Since(start)
	if code != 0 {
		t.Fatalf("the observers: exit %d, %s", code, stderr)
	}
	total, min := 0, 1<<30
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var k int
		if _, err := fmt.Sscanf(l, "got\t%d", &k); err != nil {
			t.Fatalf("an observer printed %q", l)
		}
		total, min = total+k, mins(min, k)
	}
	if lines := strings.Count(stdout, "got\t"); lines != n {
		t.Fatalf("%d observers of %d printed their count: %s", lines, n, stderr)
	}
	// a notification every 0.1 s for run seconds each, the first answer too
	if want := int(run * 10 * 0.7); min < want {
		t.Errorf("an observer got %d notifications in %gs, want at least %d", min, run, want)
	}
	figure(t, "coap-dtls-observers", "%d devices observing one sensor over coaps:// for %gs: %d notifications, the fewest %d (%.1fs with the handshakes), sensor RSS %d KiB",
		n, run, total, min, took.Seconds(), e2e.RSS(p.Pid())>>10)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.HasSuffix(out.String(), "observers\t0\n") {
		if time.Now().After(deadline) {
			t.Fatalf("the sensor still has observers 5s after the fleet's end: %q", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("observers\t%d\n", n)) {
		t.Errorf("the sensor never had the %d observers at once: %q", n, out.String())
	}
	p.Signal(syscall.SIGINT, 2*time.Second)
}

func mins(a, b int) int {
	if a < b {
		return a
	}
	return b
}
