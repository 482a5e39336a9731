package chaos

// Issue 13, MQTT: a fleet of devices publishing QoS 1 to a local mosquitto
// (every publish acknowledged, the PUBACK round trip's p99, peak RSS per
// device), a Lua device publishing in a loop (messages a second), and
// brokers that answer with garbage: the devices they serve end with a
// clear error while the rest of the fleet runs on.

import (
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// startMosquitto runs a broker on a free loopback port; it returns the port.
func startMosquitto(t *testing.T) int {
	t.Helper()
	e2e.Need(t, "mosquitto")
	port := e2e.FreePort(t)
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n", port)
	cf := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	e2e.Start(t, "mosquitto", "-c", cf)
	e2e.WaitListen(t, port)
	return port
}

// fleetScript publishes QoS 1 once a second (each device at its own phase
// in the second), then prints its failures and a histogram of its round
// trips: bucket b counts those under 10^(b/20) µs (12 % steps), so that
// what the measure holds stays small beside the device.
const fleetScript = `
local n = tonumber(args.n)
local c = assert(mqtt.connect(TARGET, { client_id = "fleet-" .. device.id, keepalive = 60, timeout = 30 }))
sleep(math.random())
local hist, fails = {}, 0
local start = now()
for i = 1, n do
  local t = now()
  local ok, err = c:publish("fleet/" .. device.id, "21.5", { qos = 1 })
  if ok then
    local b = math.ceil(math.log10(math.max((now() - t) * 1e6, 1)) * 20)
    hist[b] = (hist[b] or 0) + 1
  else
    fails = fails + 1
    log.warn(err)
  end
  local wait = start + i - now()
  if wait > 0 then sleep(wait) end
end
local out = { "R", fails }
for b, k in pairs(hist) do out[#out + 1] = b .. ":" .. k end
print(table.concat(out, " "))
c:disconnect()
`

func TestMQTTFleet(t *testing.T) {
	devices, publishes, ramp := 200, 5, "2s"
	if *soak {
		devices, publishes, ramp = 10000, 60, "10s" // connects at 1,000/s: the target is the publishing
	}
	port := startMosquitto(t)
	script := writeFile(t, "fleet.lua", fleetScript)
	p := e2e.Start(t, "wirecat", "simulate", script, "--connect", fmt.Sprintf("127.0.0.1:%d", port),
		"-n", itoa(devices), "--ramp", ramp, "--arg", "n="+itoa(publishes))
	var peak int64
	limit := time.Duration(publishes+30) * time.Second
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if v := e2e.PeakRSS(p.Pid()); v > peak {
			peak = v
		}
		select {
		case <-p.Done():
			deadline = time.Time{}
		case <-time.After(200 * time.Millisecond):
		}
	}
	if code := p.Wait(time.Second); code != 0 {
		t.Fatalf("simulate exited %d", code)
	}
	hist := map[int]int{}
	reports, fails, acked := 0, 0, 0
	for _, line := range strings.Split(p.Stdout.String(), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "R" {
			continue
		}
		reports++
		n, _ := strconv.Atoi(f[1])
		fails += n
		for _, s := range f[2:] {
			b, k, _ := strings.Cut(s, ":")
			bi, _ := strconv.Atoi(b)
			ki, _ := strconv.Atoi(k)
			hist[bi] += ki
			acked += ki
		}
	}
	if reports != devices || fails != 0 || acked != devices*publishes {
		t.Fatalf("%d devices reported, %d publishes failed, %d acknowledged of %d", reports, fails, acked, devices*publishes)
	}
	// the bucket holding the given share of the round trips, as ms
	quantile := func(q float64) float64 {
		keys := slices.Sorted(maps.Keys(hist))
		seen := 0
		for _, b := range keys {
			seen += hist[b]
			if float64(seen) >= q*float64(acked) {
				return math.Pow(10, float64(b)/20) / 1000
			}
		}
		return math.NaN()
	}
	p50, p99, max := quantile(0.5), quantile(0.99), quantile(1)
	perDev := float64(peak) / 1024 / float64(devices)
	figure(t, "mqtt-fleet", "%d devices × %d QoS 1 publishes: all %d acknowledged; PUBACK round trip p50 < %.2f ms, p99 < %.2f ms, max < %.1f ms; peak RSS %d MiB, %.1f KiB/device",
		devices, publishes, acked, p50, p99, max, peak>>20, perDev)
	if *soak && !raceEnabled && perDev > 48 {
		t.Errorf("peak RSS %.1f KiB per device, over the 48 KiB target", perDev)
	}
}

const loopScript = `
local n = tonumber(args.n)
local c = assert(mqtt.connect(TARGET, { client_id = "loop" }))
local t = now()
for i = 1, n do c:publish("bench/loop", "21.5") end
assert(c:publish("bench/loop", "end", { qos = 1 })) -- the broker took all before it
print(string.format("%.0f", n / (now() - t)))
c:disconnect()
`

func TestMQTTPublishLoop(t *testing.T) {
	n, min := 50000, 10000.0 // short: a shared CI machine
	if *soak {
		n, min = 300000, 50000
	}
	port := startMosquitto(t)
	script := writeFile(t, "loop.lua", loopScript)
	out, errOut, code := e2e.Run(t, "", 60*time.Second, "simulate", script, "--connect", fmt.Sprintf("127.0.0.1:%d", port), "--arg", "n="+itoa(n))
	rate, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
	if code != 0 || err != nil {
		t.Fatalf("exit %d, %q %s", code, out, errOut)
	}
	figure(t, "mqtt-loop", "a Lua device publishing QoS 0 in a loop: %.0f messages/s to mosquitto (%d messages)", rate, n)
	if rate < min && !raceEnabled {
		t.Errorf("%.0f messages/s, under %.0f", rate, min)
	}
	// mosquitto_pub -l beside it: a line of stdin a QoS 0 message, timed
	// from its start to its exit (connect and disconnect included).
	e2e.Need(t, "mosquitto_pub")
	lines := strings.Repeat("21.5\n", n)
	cmd := exec.Command("mosquitto_pub", "-p", itoa(port), "-t", "bench/loop", "-l")
	cmd.Stdin = strings.NewReader(lines)
	begin := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub -l: %v %s", err, out)
	}
	figure(t, "mqtt-loop mosquitto_pub -l", "%.0f messages/s to the same broker (%d messages, process start to exit)", float64(n)/time.Since(begin).Seconds(), n)
}

// TestMQTTGarbageBroker: a broker that sends odd-numbered devices a
// malformed packet after their CONNACK. Those devices fail with the
// decoder's reason; the even ones finish their publishes.
func TestMQTTGarbageBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(15 * time.Second))
				buf := make([]byte, 256)
				n, err := c.Read(buf) // CONNECT, small enough for one read
				if err != nil {
					return
				}
				odd := strings.Contains(string(buf[:n]), "odd")
				c.Write([]byte{0x20, 2, 0, 0})
				if odd {
					c.Write([]byte{0x40, 0x01, 0x00}) // a PUBACK without its identifier
				}
				for { // acknowledge QoS 1 publishes: 0x32, length, topic, id
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					for i := 0; i+1 < n; {
						l := int(buf[i+1])
						if buf[i] == 0x32 && i+2+l <= n {
							tl := int(buf[i+2])<<8 | int(buf[i+3])
							id := buf[i+4+tl : i+6+tl]
							c.Write([]byte{0x40, 2, id[0], id[1]})
						}
						i += 2 + l
					}
				}
			}()
		}
	}()
	script := writeFile(t, "garbage.lua", `
local kind = device.id % 2 == 1 and "odd" or "even"
local c = assert(mqtt.connect(TARGET, { client_id = kind .. device.id }))
for i = 1, 5 do
  assert(c:publish("t", "x", { qos = 1 }))
  sleep(0.05)
end
print("done", device.id)
c:disconnect()
`)
	out, errOut, code := e2e.Run(t, "", 20*time.Second, "simulate", script, "--connect", ln.Addr().String(), "-n", "20", "--ramp", "0")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (devices failed)\n%s", code, errOut)
	}
	if got := strings.Count(out, "done"); got != 10 {
		t.Errorf("%d devices finished, want the 10 even ones\n%s", got, out)
	}
	if got := strings.Count(errOut, "mqtt: malformed PUBACK packet"); got != 10 {
		t.Errorf("%d devices named the malformed packet, want 10\n%s", got, errOut)
	}
}
