package script

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
	"github.com/wirecat-dev/wirecat/proto"
)

const modbusRegs = `local regs = { unit = 1, holding = { [0] = 215, 400, -2 }, input = { [0] = 1, 2 },
  coils = { [0] = false, true }, discrete = { [0] = true } }`

// TestModbusClientServer: every function against a device's register map,
// over TCP and RTU framing, with exception replies.
func TestModbusClientServer(t *testing.T) {
	for _, rtu := range []bool{false, true} {
		t.Run(fmt.Sprint("rtu=", rtu), func(t *testing.T) {
			r := run(t, modbusRegs+fmt.Sprintf(`
local srv = assert(modbus.serve("127.0.0.1:0", { rtu = %v }, regs))
local m = assert(modbus.connect(srv:addr(), { unit = 1, rtu = %v }))
local v = assert(m:read_holding(0, 3))
print(v[1], v[2], v[3])
print(m:write_register(1, 401), regs.holding[1])
print(m:write_registers(0, { 10, 11 }), regs.holding[0], regs.holding[1])
local c = assert(m:read_coils(0, 2))
print(c[1], c[2], m:write_coil(0, true), regs.coils[0])
print(m:write_coils(0, { false, false }), regs.coils[0], regs.coils[1])
print(m:read_input(0, 2)[2], m:read_discrete(0, 1)[1])
print(m:read_holding(5, 1))
print(m:write_registers(2, { 1, 2 }))
print(m:read_input(0, 1) and regs.input[0])
local other = assert(modbus.connect(srv:addr(), { unit = 9, rtu = %v, timeout = 0.2 }))
print(other:read_holding(0, 1)) -- not this server's unit: no answer
print(pcall(m.read_holding, m, 0, 126))
m:close()
srv:close()
`, rtu, rtu, rtu), 5*time.Second, nil)
			want := `215	400	65534
true	401
true	10	11
false	true	true	true
true	false	false
2	true
nil	exception 2 (illegal data address) to function 3
nil	exception 2 (illegal data address) to function 16
1
nil	timeout
false	modbus:17: bad argument #3 to read (count must be an integer from 1 to 125)
`
			if r.err != nil || r.out != want {
				t.Fatalf("%v\n%s\nwant\n%s\n%s", r.err, r.out, want, r.errOut)
			}
		})
	}
}

// TestModbusMbpoll: mbpoll reads and writes a device's registers.
func TestModbusMbpoll(t *testing.T) {
	e2e.Need(t, "mbpoll")
	port := e2e.FreePort(t)
	p, err := Compile("plc.lua", []byte(modbusRegs+fmt.Sprintf(`
local srv = assert(modbus.serve("127.0.0.1:%d", regs))
sleep(4)
print(regs.holding[1])
srv:close()
`, port)))
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
	e2e.WaitListen(t, port)
	mbpoll := func(args ...string) (string, error) {
		args = append([]string{"-m", "tcp", "-a", "1", "-0", "-1", "-p", fmt.Sprint(port)}, args...)
		b, err := exec.Command("mbpoll", args...).CombinedOutput()
		return string(b), err
	}
	got, err := mbpoll("-r", "0", "-c", "3", "-t", "4", "127.0.0.1")
	if err != nil || !strings.Contains(got, "[0]: \t215\n[1]: \t400\n[2]: \t65534 (-2)\n") {
		t.Fatalf("mbpoll read: %v\n%s", err, got)
	}
	if got, err := mbpoll("-r", "1", "-t", "4", "127.0.0.1", "555"); err != nil || !strings.Contains(got, "Written 1 references") {
		t.Fatalf("mbpoll write: %v\n%s", err, got)
	}
	if got, err := mbpoll("-r", "0", "-c", "2", "-t", "0", "127.0.0.1"); err != nil || !strings.Contains(got, "[0]: \t0\n[1]: \t1\n") {
		t.Fatalf("mbpoll coils: %v\n%s", err, got)
	}
	if got, err := mbpoll("-r", "9", "-t", "4", "127.0.0.1"); err == nil {
		t.Fatalf("mbpoll read of an absent register succeeded:\n%s", got)
	}
	if err := <-done; err != nil || out.String() != "555\n" {
		t.Fatalf("%v %q", err, out.String())
	}
}

// TestModbusBadFrames: a peer sending a frame with another protocol id ends
// its connection with the framing's reason; the server serves the others.
func TestModbusBadFrames(t *testing.T) {
	// Port 0 and the address printed: a port picked free beforehand may be
	// taken meanwhile by another job's connection on a shared machine.
	p, err := Compile("plc.lua", []byte(modbusRegs+`
local srv = assert(modbus.serve("127.0.0.1:0", regs))
print(srv:addr())
sleep(1)
local m = assert(modbus.connect(srv:addr()))
print(m:read_holding(0, 1)[1])
m:close()
srv:close()
`))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	var out syncBuf
	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextTimeout(10 * time.Second)
		defer cancel()
		done <- p.Run(ctx, 1, &Env{Count: 1, Stdout: &out, Sink: rec})
	}()
	e2e.WaitFor(t, 5*time.Second, "the address", func() bool { return strings.Contains(out.String(), "\n") })
	addr, _, _ := strings.Cut(out.String(), "\n")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	if n, err := c.Read(make([]byte, 10)); n != 0 || err == nil {
		t.Fatalf("the server answered garbage: %d %v", n, err)
	}
	if err := <-done; err != nil || out.String() != addr+"\n215\n" {
		t.Fatalf("%v %q", err, out.String())
	}
	found := false
	for _, ev := range rec.ev {
		if ev.Err != nil && strings.Contains(ev.Err.Error(), "modbus-tcp: protocol id") {
			found = true
		}
	}
	if !found {
		t.Fatal("no error event naming the bad protocol id")
	}
}

// TestModbusRTUPty: mbpoll in RTU mode on a pty a device serves.
func TestModbusRTUPty(t *testing.T) {
	e2e.Need(t, "mbpoll")
	path := t.TempDir() + "/ttyPLC"
	p, err := Compile("plc.lua", []byte(modbusRegs+fmt.Sprintf(`
local srv = assert(modbus.serve("pty:%s", { rtu = true }, regs))
sleep(3)
print(regs.holding[1])
srv:close()
`, path)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var out syncBuf
	go func() {
		ctx, cancel := contextTimeout(10 * time.Second)
		defer cancel()
		done <- p.Run(ctx, 1, &Env{Count: 1, Stdout: &out})
	}()
	e2e.WaitFor(t, 3*time.Second, "the pty", func() bool { _, err := os.Stat(path); return err == nil })
	mbpoll := func(args ...string) (string, error) {
		args = append([]string{"-m", "rtu", "-a", "1", "-b", "9600", "-P", "none", "-0", "-1"}, args...)
		b, err := exec.Command("mbpoll", args...).CombinedOutput()
		return string(b), err
	}
	if got, err := mbpoll("-r", "0", "-c", "2", "-t", "4", path); err != nil || !strings.Contains(got, "[0]: \t215\n[1]: \t400\n") {
		t.Fatalf("mbpoll rtu read: %v\n%s", err, got)
	}
	if got, err := mbpoll("-r", "1", "-t", "4", path, "555"); err != nil || !strings.Contains(got, "Written 1 references") {
		t.Fatalf("mbpoll rtu write: %v\n%s", err, got)
	}
	if err := <-done; err != nil || out.String() != "555\n" {
		t.Fatalf("%v %q", err, out.String())
	}
}

// TestRTUBusSkipsAnotherSlavesReply: on a shared bus the server also hears
// other slaves' replies; the 8-byte reply to a write of registers (16) must
// not be read as the start of a request whose byte count is its CRC, which
// held the master's next request back until 264 bytes had passed.
func TestRTUBusSkipsAnotherSlavesReply(t *testing.T) {
	withCRC := func(b ...byte) []byte {
		c := proto.CRC16Modbus(b)
		return append(b, byte(c), byte(c>>8))
	}
	reply := withCRC(0x02, 0x10, 0x00, 0x01, 0x00, 0x02) // slave 2 wrote 2 registers
	request := withCRC(0x01, 0x03, 0x00, 0x05, 0x00, 0x01)
	buf := append(append([]byte{}, reply...), request...)
	var got [][]byte
	for rest := buf; len(rest) > 0; {
		msg, n, err := rtuBus{}.Decode(rest)
		if err != nil || n == 0 {
			t.Fatalf("stuck at % x: used %d, %v (frames so far % x)", rest, n, err, got)
		}
		if msg != nil {
			got = append(got, msg)
		}
		rest = rest[n:]
	}
	if len(got) != 1 || !bytes.Equal(got[0], request) {
		t.Fatalf("frames % x, want only the request % x", got, request)
	}
	// A real write request still reads whole.
	write := withCRC(0x01, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0a, 0x01, 0x02)
	if msg, n, err := (rtuBus{}).Decode(write); err != nil || n != len(write) || !bytes.Equal(msg, write) {
		t.Fatalf("write request: % x %d %v", msg, n, err)
	}
}

// FuzzRTUBus: the RTU server framing never panics, never claims more than
// it has, and a frame it returns has its CRC right; noise is skipped a
// byte at a time, so a buffer always drains.
func FuzzRTUBus(f *testing.F) {
	f.Add([]byte{0x01, 0x03, 0x00, 0x05, 0x00, 0x01, 0x94, 0x0b})
	f.Add([]byte{0x00, 0xff, 0x13, 0x37, 0x01, 0x03, 0x00, 0x05, 0x00, 0x01, 0x94, 0x0b})
	f.Add([]byte{0x01, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0a, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, buf []byte) {
		for rest := buf; len(rest) > 0; {
			msg, n, err := rtuBus{}.Decode(rest)
			if err != nil || n > len(rest) {
				t.Fatalf("% x: %d %v", rest, n, err)
			}
			if n == 0 {
				return // waiting for more
			}
			if msg != nil {
				c := proto.CRC16Modbus(msg[:len(msg)-2])
				if len(msg) < 4 || msg[len(msg)-2] != byte(c) || msg[len(msg)-1] != byte(c>>8) {
					t.Fatalf("a frame with a bad CRC: % x", msg)
				}
			}
			rest = rest[n:]
		}
	})
}
