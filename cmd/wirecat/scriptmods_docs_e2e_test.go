package main

// scripts/ on the protocol modules: led-board.lua over MQTT and HTTP (its
// header commands, run as printed), and modbus-rtu.lua (modbus.serve)
// ignoring noise on the line as a slave on a bus does.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func init() {
	docCases = append(docCases, scriptModsDocCases...)
}

var scriptModsDocCases = []docCase{
	{
		name: "script-led-board-mqtt",
		cmds: []string{"wirecat simulate scripts/led-board.lua --arg via=mqtt --connect 127.0.0.1:1883 &",
			"mosquitto_pub -p 1883 -t boards/1/led -m ON"},
		run: func(e *docEnv, c []string) {
			need(e.t, "mosquitto", "mosquitto_sub", "mosquitto_pub")
			port := e.port(1883)
			e.sub("-p 1883", fmt.Sprintf("-p %d", port))
			e.start(fmt.Sprintf("mosquitto -p %d", port), nil)
			waitListen(e.t, port)
			sub := e.start(fmt.Sprintf("mosquitto_sub -p %d -t boards/1/state -v", port), nil)
			time.Sleep(300 * time.Millisecond) // the subscription is in
			sim := e.start(c[0], nil)
			sub.waitOutput("boards/1/state OFF\n", 10*time.Second)
			e.mustRun(c[1], "")
			sub.waitOutput("boards/1/state OFF\nboards/1/state ON\n", 10*time.Second)
			e.mustRun(fmt.Sprintf("mosquitto_pub -p %d -t boards/1/led -m blink", port), "")
			sim.waitStderr("unknown command: blink", 10*time.Second)
			sim.interrupt()
			sim.wait(10 * time.Second)
			// the will: the board went away without a disconnect
			sub.waitOutput("boards/1/state offline\n", 10*time.Second)
		},
	},
	{
		name: "script-led-board-http",
		cmds: []string{"wirecat simulate scripts/led-board.lua --arg via=http --listen 127.0.0.1:8080 &",
			"curl -X PUT -d ON http://127.0.0.1:8080/led"},
		run: func(e *docEnv, c []string) {
			need(e.t, "curl")
			sim := e.start(c[0], nil)
			waitListen(e.t, e.port(8080))
			get := fmt.Sprintf("curl -s http://127.0.0.1:%d/led", e.port(8080))
			if out := e.mustRun(get, ""); out != "OFF\n" {
				e.t.Fatalf("GET /led: %q", out)
			}
			if out := e.mustRun(c[1], ""); out != "ON\n" {
				e.t.Fatalf("PUT /led ON: %q", out)
			}
			if out := e.mustRun(get, ""); out != "ON\n" {
				e.t.Fatalf("GET /led after PUT: %q", out)
			}
			out, _, _ := e.run(fmt.Sprintf("curl -s -w ' %%{http_code}' -X PUT -d blink http://127.0.0.1:%d/led", e.port(8080)), "", 10*time.Second)
			if out != "unknown command: blink\n 400" {
				e.t.Fatalf("PUT /led blink: %q", out)
			}
			sim.interrupt()
			sim.wait(10 * time.Second)
		},
	},
}

// modbus-rtu.lua (modbus.serve with rtu) skips noise and a frame with a bad
// CRC, and answers the next good frame: the pty stays up.
func TestModbusRTUNoise(t *testing.T) {
	need(t, "mbpoll")
	needPyserial(t)
	tty := filepath.Join(t.TempDir(), "ttyRTU")
	start(t, "wirecat", "simulate", "../../scripts/modbus-rtu.lua", "--listen", "pty:"+tty)
	waitLink(t, tty)
	// noise, then a read of register 5 with its CRC broken, then the same
	// read whole: only the last is answered (01 03 02 00 05 + CRC)
	out := py(t, `
import serial, sys, time
s = serial.Serial(sys.argv[1], timeout=1)
good = bytes.fromhex("010300050001940b")
bad = good[:-1] + bytes([good[-1] ^ 0xff])
s.write(b"\x00\xff\x13\x37" + bad)
s.flush()
time.sleep(0.3)
s.write(good)
s.flush()
print(s.read(7).hex())
`, tty)
	if strings.TrimSpace(out) != "01030200057847" {
		t.Fatalf("the answer to the good read: %q", out)
	}
	p := startIn(t, strings.NewReader(""), "mbpoll", "-m", "rtu", "-b", "9600", "-P", "none", "-1", "-a", "1", "-t", "4", "-r", "6", "-c", "1", tty)
	if code := p.wait(10 * time.Second); code != 0 || !strings.Contains(p.stdout.String(), "[6]: \t5\n") {
		t.Fatalf("mbpoll after the noise: exit %d\n%s%s", code, p.stdout, p.stderr)
	}
}
