package chaos

// Issue 9 item 2 and issue 15: SIGINT exits 130 and SIGTERM 143, within a
// second, in every state a user can leave wirecat in, and every recording
// parses afterwards.

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
	"github.com/wirecat-dev/wirecat/internal/testpeer"
)

func sigName(sig syscall.Signal) string {
	if sig == syscall.SIGINT {
		return "SIGINT"
	}
	return "SIGTERM"
}

// showParses fails the test unless `wirecat show FILE` reads the whole
// recording.
func showParses(t *testing.T, rec string) {
	t.Helper()
	p := e2e.StartWith(t, strings.NewReader(""), io.Discard, "wirecat", "show", "-o", "json", rec)
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Errorf("wirecat show %s: exit %d: %s", rec, code, p.Stderr)
	}
}

// flood accepts connections on a loopback port and writes to each until
// it fails: a peer that talks faster than a stuck stdout can show.
func flood(t *testing.T) string {
	t.Helper()
	line := []byte(strings.Repeat("flood ", 20) + "\n")
	return testpeer.TCP(t, func(c net.Conn) {
		c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		for {
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	})
}

// silent accepts connections and never says a word: a TLS handshake to it
// waits.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}

// fullBacklog is a loopback port whose listener never accepts and whose
// accept queue is full: a connect to it stays in SYN_SENT.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue: later SYNs are dropped, so a dial hangs.
	for range 3 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
		c.Close()
		t.Skip("this kernel completes connections beyond a full backlog")
	}
	return addr
}

// sessionWithPause is a recording whose second message comes 30 s after
// the first: a replay of it waits on its timing.
func sessionWithPause(t *testing.T) string {
	t.Helper()
	f := t.TempDir() + "/pause.jsonl"
	body := `{"wirecat":"session","version":1,"command":"connect","frame":"raw","start":"2026-01-01T00:00:00Z"}
{"t":0,"ev":"open","conn":1,"transport":"tcp","role":"client","local":"127.0.0.1:40000","remote":"127.0.0.1:5000"}
{"t":0.001,"ev":"data","conn":1,"from":"client","text":"first\n"}
{"t":30,"ev":"data","conn":1,"from":"client","text":"second\n"}
{"t":30.001,"ev":"close","conn":1,"by":"client"}
`
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// A state wirecat is left in before the signal comes.
type state struct {
	name string
	// start starts wirecat in the state and returns it once it is there;
	// rec is a recording path to pass, or "" for none.
	start func(t *testing.T, rec string) *e2e.Proc
	rec   bool // the state records, and the recording must parse
}

func listenAddr(t *testing.T) (string, int) {
	port := e2e.FreePort(t)
	return fmt.Sprintf("127.0.0.1:%d", port), port
}

func withRec(args []string, rec string) []string {
	if rec == "" {
		return args
	}
	return append(args, "--record", rec)
}

var states = []state{
	{name: "idle listener", rec: true, start: func(t *testing.T, rec string) *e2e.Proc {
		addr, port := listenAddr(t)
		p := e2e.Start(t, "wirecat", withRec([]string{"listen", addr}, rec)...)
		e2e.WaitListen(t, port)
		return p
	}},
	{name: "idle listener -k", start: func(t *testing.T, rec string) *e2e.Proc {
		addr, port := listenAddr(t)
		p := e2e.Start(t, "wirecat", "listen", "-k", addr)
		e2e.WaitListen(t, port)
		return p
	}},
	{name: "UDP listener", rec: true, start: func(t *testing.T, rec string) *e2e.Proc {
		port := e2e.FreeUDPPort(t)
		p := e2e.Start(t, "wirecat", withRec([]string{"listen", "-u", "-k", fmt.Sprintf("127.0.0.1:%d", port)}, rec)...)
		e2e.WaitUDP(t, port)
		c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("hello\n"))
		p.WaitOutput("hello", 5*time.Second)
		return p
	}},
	{name: "listen, stdout stuck", rec: true, start: func(t *testing.T, rec string) *e2e.Proc {
		addr, port := listenAddr(t)
		p := e2e.StartWith(t, nil, stuckStdout(t), "wirecat", withRec([]string{"listen", "--recv-only", addr, "--frame", "line"}, rec)...)
		e2e.WaitListen(t, port)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go func() {
			line := []byte(strings.Repeat("x", 120) + "\n")
			c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			for {
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		}()
		waitBlocked(t, rec)
		return p
	}},
	{name: "connect, stdout stuck", rec: true, start: func(t *testing.T, rec string) *e2e.Proc {
		p := e2e.StartWith(t, nil, stuckStdout(t), "wirecat", withRec([]string{"connect", "--recv-only", flood(t)}, rec)...)
		waitBlocked(t, rec)
		return p
	}},
	{name: "send --replies, stdout stuck", rec: true, start: func(t *testing.T, rec string) *e2e.Proc {
		p := e2e.StartWith(t, strings.NewReader(""), stuckStdout(t), "wirecat",
			withRec([]string{"send", flood(t), "hi", "--replies", "100000000", "--wait", "5s"}, rec)...)
		waitBlocked(t, rec)
		return p
	}},
	{name: "relay -o text, stdout stuck", rec: true, start: func(t *testing.T, rec string) *e2e.Proc {
		p, addr := relayThrough(t, flood(t), stuckStdout(t), withRec([]string{"-o", "text"}, rec)...)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go io.Copy(io.Discard, c)
		p.WaitStderr("dropped so far", 5*time.Second)
		return p
	}},
	{name: "simulate, stdout stuck", start: func(t *testing.T, rec string) *e2e.Proc {
		script := t.TempDir() + "/chatty.lua"
		os.WriteFile(script, []byte("while true do\n  print(string.rep('x', 1000))\n  sleep(0.0001)\nend\n"), 0o644)
		p := e2e.StartWith(t, nil, stuckStdout(t), "wirecat", "simulate", script, "--count", "2")
		time.Sleep(500 * time.Millisecond) // 64 KiB of pipe and 1 MiB of queue fill well before
		return p
	}},
	{name: "connect, peer not reading", rec: true, start: func(t *testing.T, rec string) *e2e.Proc {
		// stdin never ends; the peer never reads: the send side blocks.
		p := e2e.StartWith(t, endless{}, nil, "wirecat", withRec([]string{"connect", silentServer(t)}, rec)...)
		time.Sleep(500 * time.Millisecond)
		return p
	}},
	{name: "UDP listener, stdout stuck", rec: true, start: func(t *testing.T, rec string) *e2e.Proc {
		port := e2e.FreeUDPPort(t)
		p := e2e.StartWith(t, nil, stuckStdout(t), "wirecat", withRec([]string{"listen", "-u", "--recv-only", fmt.Sprintf("127.0.0.1:%d", port)}, rec)...)
		e2e.WaitUDP(t, port)
		c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		dgram := []byte(strings.Repeat("u", 1000))
		stop := make(chan struct{})
		t.Cleanup(func() { close(stop) })
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c.Write(dgram)
				time.Sleep(20 * time.Microsecond)
			}
		}()
		waitBlocked(t, rec)
		return p
	}},
	{name: "listen, Lua framer spinning", rec: true, start: func(t *testing.T, rec string) *e2e.Proc {
		framer := t.TempDir() + "/spin.lua"
		os.WriteFile(framer, []byte("return {decode = function(buf) while true do end end, encode = function(m) return m end}\n"), 0o644)
		addr, port := listenAddr(t)
		p := e2e.Start(t, "wirecat", withRec([]string{"listen", "--recv-only", addr, "--frame", "lua:" + framer, "--lua-timeout", "0"}, rec)...)
		e2e.WaitListen(t, port)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.Write([]byte("spin\n"))
		time.Sleep(200 * time.Millisecond)
		return p
	}},
	{name: "relay, Lua hook spinning", rec: true, start: func(t *testing.T, rec string) *e2e.Proc {
		hook := t.TempDir() + "/spin.lua"
		os.WriteFile(hook, []byte("function on_message(conn, dir, msg) while true do end end\n"), 0o644)
		target, _ := sinkLines(t)
		p, addr := relayThrough(t, target, nil, withRec([]string{"--frame", "line", "--script", hook, "--lua-timeout", "0"}, rec)...)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.Write([]byte("spin\n"))
		time.Sleep(200 * time.Millisecond)
		return p
	}},
	{name: "simulate, device spinning", start: func(t *testing.T, rec string) *e2e.Proc {
		script := t.TempDir() + "/spin.lua"
		os.WriteFile(script, []byte("local n = 0\nwhile true do n = n + 1 end\n"), 0o644)
		p := e2e.Start(t, "wirecat", "simulate", script, "--lua-timeout", "0")
		time.Sleep(300 * time.Millisecond)
		return p
	}},
	{name: "TLS handshake pending", start: func(t *testing.T, rec string) *e2e.Proc {
		addr, port := listenAddr(t)
		p := e2e.Start(t, "wirecat", "listen", "tls://"+addr)
		e2e.WaitListen(t, port)
		c, err := net.Dial("tcp", addr) // and not a byte of a ClientHello
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		time.Sleep(100 * time.Millisecond)
		return p
	}},
	{name: "connect, TLS handshake pending", start: func(t *testing.T, rec string) *e2e.Proc {
		p := e2e.Start(t, "wirecat", "connect", "--insecure", "tls://"+silentServer(t))
		time.Sleep(200 * time.Millisecond)
		return p
	}},
	{name: "connect still dialing", start: func(t *testing.T, rec string) *e2e.Proc {
		p := e2e.Start(t, "wirecat", "connect", fullBacklog(t))
		time.Sleep(200 * time.Millisecond)
		return p
	}},
	{name: "replay waiting on its timing", start: func(t *testing.T, rec string) *e2e.Proc {
		target, got := sinkLines(t)
		p := e2e.Start(t, "wirecat", "replay", sessionWithPause(t), "--to", target)
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("the replay did not send its first message")
		}
		return p
	}},
}

// endless is a stdin that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'e'
	}
	return len(p), nil
}

// sinkLines accepts connections and reports each first read.
func sinkLines(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	got := make(chan struct{}, 1)
	addr := testpeer.TCP(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			select {
			case got <- struct{}{}:
			default:
			}
		}
	})
	return addr, got
}

// waitBlocked waits until stdout is surely stuck: the recording passed
// 256 KiB, four times what a pipe holds, and stopped growing.
func waitBlocked(t *testing.T, rec string) {
	t.Helper()
	size := func() int64 {
		fi, err := os.Stat(rec)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	e2e.WaitFor(t, 10*time.Second, "the recording to pass 256 KiB", func() bool { return size() > 256<<10 })
	last := size()
	e2e.WaitFor(t, 10*time.Second, "the recording to stop growing (stdout holding the peer back)", func() bool {
		time.Sleep(300 * time.Millisecond)
		now := size()
		defer func() { last = now }()
		return now == last
	})
}

// Every state × SIGINT and SIGTERM: the process ends within a second with
// 130 or 143, and its recording parses.
func TestSignalStates(t *testing.T) {
	for _, st := range states {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			t.Run(strings.ReplaceAll(st.name, " ", "_")+"/"+sigName(sig), func(t *testing.T) {
				rec := ""
				if st.rec {
					rec = t.TempDir() + "/rec.jsonl"
				}
				p := st.start(t, rec)
				select {
				case <-p.Done():
					t.Fatalf("wirecat exited before the signal: %s", p.Stderr)
				default:
				}
				took := p.Signal(sig, time.Second)
				figure(t, st.name+" "+sigName(sig), "exit %d after %v", p.Cmd.ProcessState.ExitCode(), took.Round(time.Millisecond))
				if code, want := p.Cmd.ProcessState.ExitCode(), 128+int(sig); code != want {
					t.Errorf("exit code %d, want %d; stderr: %s", code, want, p.Stderr)
				}
				if rec != "" {
					showParses(t, rec)
				}
			})
		}
	}
}
