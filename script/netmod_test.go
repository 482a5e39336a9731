package script

import (
	"bufio"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"

	"github.com/wirecat-dev/wirecat/proto"
)

// wireServer accepts one connection, writes wire, then echoes what it reads.
func wireServer(t *testing.T, wire []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(wire)
		io.Copy(c, c)
	}()
	return ln.Addr().String()
}

func encodeAll(t *testing.T, spec string, msgs ...string) []byte {
	t.Helper()
	f, err := proto.Parse(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, m := range msgs {
		if out, err = f.Encode(out, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// slip and cobs report empty frames as filler (a nil message with n > 0):
// a device never sees them as messages, and the stream goes on after them.
func TestFillerFramesSkipped(t *testing.T) {
	for _, c := range []struct {
		spec   string
		filler []byte
	}{
		{"slip", []byte{0xC0, 0xC0}},
		{"cobs", []byte{0x00, 0x00}},
	} {
		t.Run(c.spec, func(t *testing.T) {
			var wire []byte
			wire = append(wire, c.filler...)
			wire = append(wire, encodeAll(t, c.spec, "a\xc0b\x00c")...)
			wire = append(wire, c.filler...)
			wire = append(wire, encodeAll(t, c.spec, "second")...)
			addr := wireServer(t, wire)
			r := run(t, `
				local c = assert(net.connect(TARGET, {frame = "`+c.spec+`"}))
				for i = 1, 2 do
				  local m, err = c:recv(2)
				  print(string.format("%q", m or err))
				end
				c:send("echo\0me\192")
				print(string.format("%q", c:recv(2) or "?"))
				print(c:recv(0.1))
			`, 5*time.Second, &Env{Target: addr})
			want := "\"a\\xc0b\\x00c\"\n\"second\"\n\"echo\\x00me\\xc0\"\nnil\ttimeout\n"
			if r.err != nil || r.out != want {
				t.Fatalf("out %q err %v, want %q", r.out, r.err, want)
			}
		})
	}
}

// A datagram of filler only is no message; one with filler around a frame
// is that frame.
func TestFillerInDatagrams(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		pc.SetDeadline(time.Now().Add(5 * time.Second))
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo([]byte{0xC0, 0xC0}, from)
		pc.WriteTo(append(append([]byte{0xC0}, buf[:n]...), 0xC0), from)
	}()
	r := run(t, `
		local c = assert(net.connect("udp://`+pc.LocalAddr().String()+`", {frame = "slip"}))
		c:send("ping")
		print(c:recv(2))
		print(c:recv(0.1))
	`, 5*time.Second, nil)
	if r.err != nil || r.out != "ping\nnil\ttimeout\n" {
		t.Fatalf("out %q err %v", r.out, r.err)
	}
}

// A Lua decode may skip filler too: nil with a count.
func TestLuaFramerSkipsFiller(t *testing.T) {
	addr := wireServer(t, []byte("..one;..;two;"))
	r := run(t, `
		local f = {decode = function(buf)
		  local dots = buf:match("^%.+")
		  if dots then return nil, #dots end
		  local i = buf:find(";", 1, true)
		  if not i then return nil end
		  return buf:sub(1, i - 1), i
		end}
		local c = assert(net.connect(TARGET, {frame = f}))
		print(c:recv(1), c:recv(1), c:recv(1), c:recv(0.05))
	`, 5*time.Second, &Env{Target: addr})
	if r.err != nil || r.out != "one\t\ttwo\tnil\ttimeout\n" {
		t.Fatalf("out %q err %v", r.out, r.err)
	}
}

// udpEcho is a python3 UDP server: each datagram comes back upper-cased,
// followed by a second datagram "+1".
const udpEcho = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(10)
print(s.getsockname()[1], flush=True)
for _ in range(3):
    data, peer = s.recvfrom(65535)
    s.sendto(data.upper(), peer)
    s.sendto(b"+1", peer)
`

func TestUDPConnectPython(t *testing.T) {
	py := needTool(t, "python3")
	cmd := exec.Command(py, "-c", udpEcho)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	port, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, `
		local c = assert(net.connect("udp://127.0.0.1:`+strings.TrimSpace(port)+`"))
		c:send("ping")
		print(c:recv(5), c:recv(5), c:peer() == "127.0.0.1:`+strings.TrimSpace(port)+`")
		-- with a framing, a datagram may carry several messages
		local f = assert(net.connect("udp://127.0.0.1:`+strings.TrimSpace(port)+`", {frame = "line"}))
		f:send("one\ntwo")
		print(f:recv(5), f:recv(5), f:recv(5))
	`, 10*time.Second, nil)
	if r.err != nil || r.out != "PING\t+1\ttrue\nONE\tTWO\t+1\n" {
		t.Fatalf("out %q err %v", r.out, r.err)
	}
}

// udpClients is a python3 client: two sockets (two senders) each send two
// datagrams, one at a time, and print the answers.
const udpClients = `
import socket, sys
port = int(sys.argv[1])
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
for s in socks:
    s.settimeout(5)
for i in (1, 2):
    for name, s in zip("ab", socks):
        s.sendto(("%s%d" % (name, i)).encode(), ("127.0.0.1", port))
        print(s.recvfrom(100)[0].decode(), flush=True)
`

func freeUDP(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// net.listen on UDP: a handler per sender. One that loops serves all of its
// sender's datagrams; one that returns after an answer is started again for
// the sender's next datagram.
func TestUDPListenPython(t *testing.T) {
	py := needTool(t, "python3")
	for _, c := range []struct {
		name, handler string
		handlers      string
	}{
		{"loop", `while true do
			local m = conn:recv()
			if not m then return end
			conn:send(m:upper() .. " from " .. me)
			served = served + 1
			if served == 4 then server:close() end
		  end`, "2"},
		{"one-shot", `local m = conn:recv()
		  conn:send(m:upper() .. " from " .. me)
		  served = served + 1
		  if served == 4 then server:close() end`, "4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := freeUDP(t)
			p, err := Compile("udp.lua", []byte(`
				served, handlers = 0, 0
				server = assert(net.listen("udp://127.0.0.1:`+strconv.Itoa(port)+`", function(conn)
				  handlers = handlers + 1
				  local me = handlers
				  `+c.handler+`
				end))
				print(server:addr())
			`))
			if err != nil {
				t.Fatal(err)
			}
			var out syncBuf
			rec := &recorder{}
			ctx, cancel := contextTimeout(10 * time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx, 1, &Env{Count: 1, Stdout: &out, Sink: rec}) }()
			// the device prints its address once it is bound
			for deadline := time.Now().Add(5 * time.Second); out.String() == ""; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the device did not listen")
				}
			}
			got, err := exec.CommandContext(ctx, py, "-c", udpClients, strconv.Itoa(port)).CombinedOutput()
			if err != nil {
				t.Fatalf("client: %v: %s", err, got)
			}
			if err := <-done; err != nil {
				t.Fatalf("device: %v", err)
			}
			want := "A1 from 1\nB1 from 2\nA2 from 1\nB2 from 2\n"
			if c.handlers == "4" {
				want = "A1 from 1\nB1 from 2\nA2 from 3\nB2 from 4\n"
			}
			if string(got) != want || out.String() != "127.0.0.1:"+strconv.Itoa(port)+"\n" {
				t.Errorf("client got %q, device printed %q", got, out.String())
			}
			opens, closes := 0, 0
			for _, e := range rec.ev {
				switch e.Kind {
				case event.Open:
					opens++
					if e.Transport != "udp" || e.Role != event.Server {
						t.Errorf("open event %+v", e)
					}
				case event.Close:
					closes++
				}
			}
			if strconv.Itoa(opens) != c.handlers || closes != opens {
				t.Errorf("%d opens, %d closes, want %s each", opens, closes, c.handlers)
			}
		})
	}
}

// A TCP handler that returns hangs up on its peer at once, while the device
// runs on; the close is the server's doing.
func TestListenHandlerReturnHangsUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the device binds it again through Env.Listen
	p, err := Compile("test.lua", []byte(`
		local l = assert(net.listen("127.0.0.1:0", function(c) c:send("bye") end))
		sleep(1)
		l:close()
	`))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	ctx, cancel := contextTimeout(3 * time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, 1, &Env{Count: 1, Listen: addr, Sink: rec}) }()

	var c net.Conn
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err = net.Dial("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond)) // well before the device ends
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye" {
		t.Fatalf("read %q, %v; want bye then the end", got, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var kinds []string
	for _, e := range rec.ev {
		kinds = append(kinds, e.Kind.String())
		if e.Kind == event.Close && e.From != event.Server {
			t.Errorf("close from %v, want the server (the handler's side)", e.From)
		}
	}
	if strings.Join(kinds, " ") != "open data close" {
		t.Errorf("events %v, want open data close", kinds)
	}
}
