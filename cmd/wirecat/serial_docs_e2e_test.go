package main

// The docs' serial and pty examples (docs/serial.md, the --help texts, the
// scripts' headers), run as printed with their paths put in a scratch
// directory and /dev/ttyUSB0 standing for one end of a socat cable.

import (
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() { docCases = append(docCases, serialDocCases...) }

// ttyOpen opens a tty as host software would, with reads bounded by 10 s.
func ttyOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	f.SetReadDeadline(time.Now().Add(10 * time.Second))
	return f
}

func ttyExpect(t *testing.T, f *os.File, want string) {
	t.Helper()
	b := make([]byte, len(want))
	if _, err := io.ReadFull(f, b); err != nil || string(b) != want {
		t.Fatalf("%s: read %q, %v; want %q", f.Name(), b, err, want)
	}
}

var serialDocCases = []docCase{
	{
		name: "serial-ports",
		cmds: []string{"wirecat ports", `wirecat ports -o json | jq -r 'select(.vid == "2341") | .path'`},
		run: func(e *docEnv, c []string) {
			need(e.t, "jq")
			// What is plugged in here is unknown: both run, exit 0, and
			// list /dev paths only (no Arduino in CI: jq prints nothing).
			out, stderr, code := e.run(c[0], "", 10*time.Second)
			if code != 0 || (out == "" && stderr != "wirecat: no serial ports found\n") || (out != "" && !strings.HasPrefix(out, "PATH")) {
				e.t.Fatalf("ports: exit %d, %q, %q", code, out, stderr)
			}
			out, _, code = e.run(c[1], "", 10*time.Second)
			if code != 0 || (out != "" && !strings.HasPrefix(out, "/dev/")) {
				e.t.Fatalf("ports | jq: exit %d, %q", code, out)
			}
		},
	},
	{
		name: "serial-connect-listen-relay",
		cmds: []string{"wirecat connect serial:/dev/ttyUSB0 --baud 9600", "wirecat listen pty:/tmp/ttyV0",
			"wirecat relay 127.0.0.1:2323 serial:/dev/ttyUSB0", "wirecat relay pty:/tmp/ttyV0 tcp://127.0.0.1:2323"},
		run: func(e *docEnv, c []string) {
			t := e.t
			usb, far, _ := cable(t, e.dir)
			e.sub("/dev/ttyUSB0", usb)
			e.sub("/tmp/ttyV0", e.file("ttyV0"))

			// A board's console: what the board prints is on stdout.
			in := &pipeIn{}
			console := e.start(c[0], in)
			time.Sleep(200 * time.Millisecond) // the port is open
			board := ttyOpen(t, far)
			board.WriteString("U-Boot 2024.01\r\n")
			console.waitOutput("U-Boot 2024.01\r\n", 10*time.Second)
			io.WriteString(in.w, "printenv\r")
			ttyExpect(t, board, "printenv\r")
			console.interrupt()
			console.wait(10 * time.Second)

			// A tty for host software: its bytes on stdout, stdin to it.
			listen := e.start(c[1], strings.NewReader("OK\r\n"))
			waitLink(t, e.file("ttyV0"))
			host := ttyOpen(t, e.file("ttyV0"))
			host.WriteString("AT\r")
			ttyExpect(t, host, "OK\r\n")
			listen.waitOutput("AT\r", 10*time.Second)
			host.Close()
			if code := listen.wait(10 * time.Second); code != 0 {
				t.Fatalf("listen pty: exit %d after its opener closed", code)
			}

			// ser2net, and a remote board as a local tty: the two relays
			// in a row join the tty to the port.
			ser2net := e.start(c[2], nil)
			waitListen(t, e.port(2323))
			local := e.start(c[3], nil)
			waitLink(t, e.file("ttyV0"))
			host = ttyOpen(t, e.file("ttyV0"))
			host.WriteString("reboot\n")
			ttyExpect(t, board, "reboot\n")
			board.WriteString("Starting kernel ...\n")
			ttyExpect(t, host, "Starting kernel ...\n")
			local.interrupt()
			ser2net.interrupt()
			local.wait(10 * time.Second)
			ser2net.wait(10 * time.Second)
		},
	},
	{
		name: "serial-at-modem",
		cmds: []string{"wirecat simulate scripts/at-modem.lua --listen pty:/tmp/ttyModem &",
			"wirecat send serial:/tmp/ttyModem 'AT+CSQ' --frame crlf --until OK"},
		run: func(e *docEnv, c []string) {
			e.sub("/tmp/ttyModem", e.file("ttyModem"))
			sim := e.start(c[0], nil)
			waitLink(e.t, e.file("ttyModem"))
			out, stderr, code := e.run(c[1], "", 10*time.Second)
			if code != 0 || !strings.HasPrefix(out, "+CSQ: ") || !strings.HasSuffix(out, ",99\nOK\n") {
				e.t.Fatalf("send AT+CSQ: exit %d, %q, %q", code, out, stderr)
			}
			sim.interrupt()
			sim.wait(10 * time.Second)
		},
	},
	{
		name: "serial-modbus-rtu",
		cmds: []string{"wirecat simulate scripts/modbus-rtu.lua --listen pty:/tmp/ttyRTU &",
			"mbpoll -m rtu -a 1 -b 9600 -P none -t 4 -r 1 -c 5 -1 /tmp/ttyRTU"},
		run: func(e *docEnv, c []string) {
			need(e.t, "mbpoll")
			e.sub("/tmp/ttyRTU", e.file("ttyRTU"))
			sim := e.start(c[0], nil)
			waitLink(e.t, e.file("ttyRTU"))
			out, _, code := e.run(c[1], "", 10*time.Second)
			if code != 0 || !strings.Contains(out, "[2]: \t1\n[3]: \t2\n[4]: \t3\n[5]: \t4\n") {
				e.t.Fatalf("mbpoll: exit %d\n%s", code, out)
			}
			sim.interrupt()
			sim.wait(10 * time.Second)
		},
	},
}
