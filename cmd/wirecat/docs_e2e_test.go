package main

// Every example command in README.md and docs/*.md runs here as printed,
// through sh, with only loopback addresses, ports, socket paths and
// placeholders (a certificate pin, a program called sensor-dump) put in
// place, and what it prints is compared with what the text says. A command
// added to the docs without a case here fails TestDocsCommandsCovered.
//
// The docs' own lua examples (docs/lua.md) run with the command on their
// first line: TestDocsLuaExamples.

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/luatest"
	"github.com/wirecat-dev/wirecat/link"
)

var docsHeavy = flag.Bool("docs.heavy", false, "also run the docs' benchmark examples (10,000 simulated devices)")

// docFiles are the files whose sh blocks are examples.
var docFiles = []string{"README.md", "docs/cli.md", "docs/lua.md", "docs/relay.md", "docs/session-format.md", "docs/dtls.md", "docs/serial.md"}

// docCommand is one command line of an sh block: continuation lines joined,
// the trailing comment cut off, spaces collapsed.
type docCommand struct {
	file    string
	line    int
	cmd     string
	comment string
}

var (
	trailingComment = regexp.MustCompile(`\s+#\s.*$`)
	spaces          = regexp.MustCompile(`\s+`)
)

// scriptHeader is a command in an example script's header comment.
var scriptHeader = regexp.MustCompile(`^--   (\S.*)$`)

func docCommands(t *testing.T) []docCommand {
	t.Helper()
	var out []docCommand
	// The example scripts' headers show how to run them.
	scripts, _ := filepath.Glob(filepath.Join("..", "..", "scripts", "*.lua"))
	for _, f := range scripts {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "--") {
				break // the header is over
			}
			m := scriptHeader.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			full, comment := m[1], ""
			if loc := trailingComment.FindStringIndex(full); loc != nil {
				comment = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(full[loc[0]:]), "#"))
				full = full[:loc[0]]
			}
			out = append(out, docCommand{"scripts/" + filepath.Base(f), i + 1, spaces.ReplaceAllString(strings.TrimSpace(full), " "), comment})
		}
	}
	for _, f := range docFiles {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		in, pending, start := false, "", 0
		for i, line := range strings.Split(string(b), "\n") {
			trim := strings.TrimSpace(line)
			if strings.HasPrefix(trim, "```") {
				in = !in && trim == "```sh"
				continue
			}
			if !in || trim == "" || (pending == "" && strings.HasPrefix(trim, "#")) {
				continue
			}
			if pending == "" {
				start = i + 1
			}
			if strings.HasSuffix(trim, `\`) {
				pending += strings.TrimSuffix(trim, `\`) + " "
				continue
			}
			full := pending + trim
			pending = ""
			comment := ""
			if loc := trailingComment.FindStringIndex(full); loc != nil {
				comment = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(full[loc[0]:]), "#"))
				full = full[:loc[0]]
			}
			out = append(out, docCommand{f, start, spaces.ReplaceAllString(strings.TrimSpace(full), " "), comment})
		}
	}
	return out
}

// docCase runs one or more documented commands together.
type docCase struct {
	name string
	cmds []string
	skip string // why the case does not run (another engineer's open item, a GUI...)
	// serial cases run alone, before the others (a benchmark's figures
	// mean nothing next to a compiler)
	serial bool
	run    func(e *docEnv, c []string)
}

// TestDocsCommandsCovered: every command in the docs has a case, and every
// case's commands are still in the docs.
func TestDocsCommandsCovered(t *testing.T) {
	inDocs := map[string]bool{}
	for _, d := range docCommands(t) {
		inDocs[d.cmd] = true
	}
	covered := map[string]bool{}
	for _, c := range docCases {
		for _, cmd := range c.cmds {
			covered[cmd] = true
			if !inDocs[cmd] {
				t.Errorf("case %s: %q is no longer in the docs", c.name, cmd)
			}
		}
	}
	skipped := map[string]bool{}
	for _, c := range docCases {
		for _, cmd := range c.cmds {
			if c.skip != "" {
				skipped[cmd] = true
			}
		}
	}
	n, skips := 0, 0
	for _, d := range docCommands(t) {
		n++
		if skipped[d.cmd] {
			skips++
		}
		if !covered[d.cmd] {
			t.Errorf("%s:%d: no test runs %q: add it to docCases", d.file, d.line, d.cmd)
		}
	}
	t.Logf("%d example commands (%d distinct), %d of them not run here (see the skipped cases)", n, len(inDocs), skips)
}

// TestDocsExamples runs every case.
func TestDocsExamples(t *testing.T) {
	for _, c := range docCases {
		t.Run(c.name, func(t *testing.T) {
			if c.skip != "" {
				t.Skip(c.skip)
			}
			if !c.serial {
				t.Parallel()
			}
			c.run(newDocEnv(t), c.cmds)
		})
	}
}

// docEnv is a scratch directory where documented commands run: scripts/ is
// the repository's, wirecat is first on PATH, and HOME is the directory.
type docEnv struct {
	t    *testing.T
	dir  string
	bin  string // a directory on PATH for stand-in programs
	mu   sync.Mutex
	subs map[string]string // text as printed → what runs here
	ours map[string]bool   // ports put in by subs (never mapped again)
	env  []string
}

func newDocEnv(t *testing.T) *docEnv {
	dir := t.TempDir()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "scripts"), filepath.Join(dir, "scripts")); err != nil {
		t.Fatal(err)
	}
	binDir := filepath.Join(dir, ".bin")
	os.Mkdir(binDir, 0o755)
	if err := os.Symlink(bin, filepath.Join(binDir, "wirecat")); err != nil {
		t.Fatal(err)
	}
	return &docEnv{t: t, dir: dir, bin: binDir, subs: map[string]string{}, ours: map[string]bool{},
		env: append(os.Environ(), "NO_COLOR=1", "PATH="+binDir+":"+os.Getenv("PATH"), "HOME="+dir)}
}

// port gives the documented port a free loopback port here.
func (e *docEnv) port(doc int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := ":" + strconv.Itoa(doc)
	if p, ok := e.subs[key]; ok {
		n, _ := strconv.Atoi(p[1:])
		return n
	}
	p := freePort(e.t)
	e.subs[key] = ":" + strconv.Itoa(p)
	e.ours[e.subs[key]] = true
	return p
}

func (e *docEnv) addr(doc int) string { return fmt.Sprintf("127.0.0.1:%d", e.port(doc)) }

// sub puts new where the docs print old.
func (e *docEnv) sub(old, new string) {
	e.mu.Lock()
	e.subs[old] = new
	for _, p := range portRef.FindAllString(new, -1) {
		e.ours[p] = true
	}
	e.mu.Unlock()
}

var (
	portRef = regexp.MustCompile(`:\d{2,5}\b`)
	portKey = regexp.MustCompile(`^:\d+$`)
)

// expand turns a printed command into the one that runs here: whole
// strings first (example.com:80, a pin, a socket path), longest first, then
// the ports.
func (e *docEnv) expand(cmd string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var keys []string
	for k := range e.subs {
		if !portKey.MatchString(k) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		cmd = strings.ReplaceAll(cmd, k, e.subs[k])
	}
	return portRef.ReplaceAllStringFunc(cmd, func(p string) string {
		if n, ok := e.subs[p]; ok {
			return n
		}
		if e.ours[p] {
			return p
		}
		if len(p) >= 5 { // a port of 4 or 5 digits gets its own here; ":41" in '23.5:41' is no port
			n := ":" + strconv.Itoa(freePort(e.t))
			e.subs[p], e.ours[n] = n, true
			return n
		}
		return p
	})
}

func (e *docEnv) file(name string) string { return filepath.Join(e.dir, name) }

func (e *docEnv) read(name string) string {
	b, _ := os.ReadFile(e.file(name))
	return string(b)
}

func (e *docEnv) write(name, content string, mode os.FileMode) {
	if err := os.WriteFile(e.file(name), []byte(content), mode); err != nil {
		e.t.Fatal(err)
	}
}

// tool puts a stand-in program on PATH (sensor-dump...).
func (e *docEnv) tool(name, script string) {
	if err := os.WriteFile(filepath.Join(e.bin, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		e.t.Fatal(err)
	}
}

// start runs a printed command in the background, in its own process group
// (a pipeline is one job). A trailing & is what start does; stdin nil is
// /dev/null, as for a background job.
func (e *docEnv) start(cmd string, stdin io.Reader) *proc {
	e.t.Helper()
	cmd = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(cmd), "&"))
	run := e.expand(cmd)
	p := &proc{t: e.t, cmd: exec.Command("sh", "-c", run), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Dir, p.cmd.Env = e.dir, e.env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if stdin == nil {
		stdin = strings.NewReader("")
		if f, err := os.Open(os.DevNull); err == nil {
			defer f.Close()
			stdin = f
		}
		p.cmd.Stdin = stdin
	} else if w, ok := stdin.(*pipeIn); ok {
		pw, err := p.cmd.StdinPipe()
		if err != nil {
			e.t.Fatal(err)
		}
		p.stdin, w.w = pw, pw
	} else {
		p.cmd.Stdin = stdin
	}
	if err := p.cmd.Start(); err != nil {
		e.t.Fatalf("start %s: %v", run, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	e.t.Cleanup(func() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if e.t.Failed() {
			e.t.Logf("$ %s\nstdout:\n%s\nstderr:\n%s", run, p.stdout, p.stderr)
		}
	})
	return p
}

// pipeIn asks start for a stdin the test writes to (proc.stdin).
type pipeIn struct{ w io.WriteCloser }

func (*pipeIn) Read([]byte) (int, error) { return 0, io.EOF }

// run runs a printed command to its end.
func (e *docEnv) run(cmd, stdin string, timeout time.Duration) (string, string, int) {
	e.t.Helper()
	p := e.start(cmd, strings.NewReader(stdin))
	code := p.wait(timeout)
	return p.stdout.String(), p.stderr.String(), code
}

// mustRun runs a printed command and wants exit 0.
func (e *docEnv) mustRun(cmd, stdin string) string {
	e.t.Helper()
	out, errOut, code := e.run(cmd, stdin, 30*time.Second)
	if code != 0 {
		e.t.Fatalf("$ %s\nexit %d\nstdout: %s\nstderr: %s", e.expand(cmd), code, out, errOut)
	}
	return out
}

// interrupt is Ctrl-C: SIGINT to the whole job.
func (p *proc) interrupt() { syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT) }

// signalWirecat sends sig to the wirecat processes of a job only (so the
// rest of a pipeline, jq say, sees the end of its input and flushes).
func (p *proc) signalWirecat(sig syscall.Signal) {
	pgid := p.cmd.Process.Pid
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:]) // state, ppid, pgrp...
		if strings.Contains(s[:i], "(wirecat") && len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			syscall.Kill(pid, sig)
		}
	}
}

// server accepts connections on 127.0.0.1:port and serves each.
func (e *docEnv) server(port int, serve func(c net.Conn)) net.Listener {
	e.t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				serve(c)
			}()
		}
	}()
	return ln
}

// lineServer answers each line with answer(line); "" answers nothing.
func lineServer(answer func(string) string) func(net.Conn) {
	return func(c net.Conn) {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			if a := answer(sc.Text()); a != "" {
				io.WriteString(c, a+"\n")
			}
		}
	}
}

// ledBoard is the LED example's board: LED ON → STATE ON.
func ledBoard(line string) string {
	if f := strings.Fields(line); len(f) == 2 && f[0] == "LED" {
		return "STATE " + f[1]
	}
	return "ERROR unknown command: " + line
}

const httpResponse = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n"

// httpServer reads a request head and answers httpResponse.
func httpServer(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		l, err := r.ReadString('\n')
		if err != nil || l == "\r\n" || l == "\n" {
			break
		}
	}
	io.WriteString(c, httpResponse)
}

// dial connects to a local port.
func (e *docEnv) dial(port int) net.Conn {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	e.t.Cleanup(func() { c.Close() })
	return c
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	l, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Fatalf("%s should contain %q; it is:\n%s", what, w, got)
		}
	}
}

func wantLines(t *testing.T, what, got string, re string, min int) {
	t.Helper()
	rx := regexp.MustCompile(re)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if got == "" {
		lines = nil
	}
	if len(lines) < min {
		t.Fatalf("%s: want at least %d lines like %s, got %q", what, min, re, got)
	}
	for _, l := range lines {
		if !rx.MatchString(l) {
			t.Fatalf("%s: line %q is not like %s (all: %q)", what, l, re, got)
		}
	}
}

// waitLines waits until a process printed at least n lines.
func (p *proc) waitLines(n int, timeout time.Duration) {
	p.t.Helper()
	waitFor(p.t, timeout, fmt.Sprintf("%d lines on stdout (have %q)", n, p.stdout), func() bool {
		return strings.Count(p.stdout.String(), "\n") >= n
	})
}

// udpPeer is a UDP socket on a fresh loopback port.
func (e *docEnv) udpPeer(doc int) net.PacketConn {
	e.t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // bound at once: a free port asked first could be taken
	if err != nil {
		e.t.Fatal(err)
	}
	e.sub(":"+strconv.Itoa(doc), ":"+strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port))
	pc.SetDeadline(time.Now().Add(20 * time.Second))
	e.t.Cleanup(func() { pc.Close() })
	return pc
}

// udpPort gives a documented UDP port a free port here.
func (e *docEnv) udpPort(doc int) int {
	port := freeUDPPort(e.t)
	e.sub(":"+strconv.Itoa(doc), ":"+strconv.Itoa(port))
	return port
}

var (
	textLine = `^\d\d:\d\d:\d\d\.\d{3} #\d+ \S+ `
	pinLine  = regexp.MustCompile(`wirecat: tls: ephemeral self-signed certificate (sha256:[0-9a-f]{64})`)
	reading  = `^\d+\.\d:\d+$`
)

// tlsListen starts a documented TLS listener and returns it with its pin.
func (e *docEnv) tlsListen(cmd string, stdin io.Reader) (*proc, string) {
	e.t.Helper()
	p := e.start(cmd, stdin)
	var pin string
	waitFor(e.t, 10*time.Second, "the certificate's fingerprint on stderr", func() bool {
		m := pinLine.FindStringSubmatch(p.stderr.String())
		if m != nil {
			pin = m[1]
		}
		return m != nil
	})
	return p, pin
}

// recordRelay runs the README's recorded relay: a client says "temp 21.5"
// through it to a server that answers "ok". It returns the relay's stdout.
func recordRelay(e *docEnv, cmd string) string {
	t := e.t
	e.server(e.port(7001), lineServer(func(string) string { return "ok" }))
	relay := e.start(cmd, nil)
	waitListen(t, e.port(7000))
	c := e.dial(e.port(7000))
	io.WriteString(c, "temp 21.5\n")
	if got := readLine(t, bufio.NewReader(c)); got != "ok" {
		t.Fatalf("through the relay: got %q, want ok", got)
	}
	c.Close()
	relay.waitOutput("closed", 10*time.Second)
	relay.interrupt()
	relay.wait(10 * time.Second)
	return relay.stdout.String()
}

// selfSigned writes a CA (ca.pem) and a certificate for 127.0.0.1 it signed,
// and returns the server side's TLS config.
func selfSigned(e *docEnv) *tls.Config {
	t := e.t
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "docs CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	e.write("ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})), 0o644)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// pcapngMagic starts every pcapng file (a Section Header Block).
var pcapngMagic = []byte{0x0a, 0x0d, 0x0d, 0x0a}

// docRecordLED runs the documented recording of a session with the LED board.
func docRecordLED(e *docEnv, cmd, stdin string) {
	out := e.mustRun(cmd, stdin)
	wantContains(e.t, "connect's stdout", out, "STATE ON")
}

var docCases = []docCase{
	{
		name: "ws-connect",
		cmds: []string{"wirecat connect ws://127.0.0.1:8080/echo -i lines"},
		run: func(e *docEnv, c []string) {
			// The listener prints each message it receives on a line, as
			// -o hex shows them one by one.
			l := start(e.t, "wirecat", "listen", "ws://"+e.addr(8080)+"/echo", "-o", "hex")
			waitListen(e.t, e.port(8080))
			e.mustRun(c[0], "one\ntwo\n")
			if code := l.wait(10 * time.Second); code != 0 {
				e.t.Fatalf("listener exit %d", code)
			}
			if got := l.stdout.String(); !strings.Contains(got, "6f 6e 65 ") || !strings.Contains(got, "74 77 6f ") || strings.Contains(got, "0a") {
				e.t.Fatalf("the listener got %q, want two messages without newlines", got)
			}
		},
	},
	{
		name: "ws-listen",
		cmds: []string{"wirecat listen -k ws://127.0.0.1:8080/mqtt --subprotocol mqtt -o hex"},
		run: func(e *docEnv, c []string) {
			l := e.start(c[0], nil)
			waitListen(e.t, e.port(8080))
			_, errOut, code := runWirecat(e.t, "hi", 10*time.Second, "connect", "ws://"+e.addr(8080)+"/mqtt", "--subprotocol", "mqtt")
			if code != 0 {
				e.t.Fatalf("connect: exit %d: %s", code, errOut)
			}
			l.waitOutput("68 69", 10*time.Second)
		},
	},
	{
		name: "ws-relay",
		cmds: []string{"wirecat relay ws://:8080/mqtt tcp://127.0.0.1:1883 --subprotocol mqtt",
			"wirecat relay tcp://:1884 wss://broker.example/mqtt --ca ca.pem --subprotocol mqtt"},
		run: func(e *docEnv, c []string) {
			e.server(e.port(1883), lineServer(func(l string) string { return "ack " + l }))
			e.start(c[0], nil)
			waitListen(e.t, e.port(8080))
			out, errOut, code := runWirecat(e.t, "ping\n", 10*time.Second, "connect", "ws://"+e.addr(8080)+"/mqtt", "--subprotocol", "mqtt", "-o", "raw")
			if code != 0 || out != "ack ping\n" {
				e.t.Fatalf("through the ws front: exit %d, %q: %s", code, out, errOut)
			}
			// The wss broker: a wirecat listener with a certificate the
			// docs' ca.pem signed, echoing.
			cfg := selfSigned(e)
			if err := link.WritePEM(cfg.Certificates[0], e.file("broker.pem"), e.file("broker.key")); err != nil {
				e.t.Fatal(err)
			}
			wssPort := freePort(e.t)
			start(e.t, "wirecat", "listen", "-k", fmt.Sprintf("wss://127.0.0.1:%d/mqtt", wssPort), "--cert", e.file("broker.pem"), "--key", e.file("broker.key"),
				"--subprotocol", "mqtt", "--exec", "cat")
			waitListen(e.t, wssPort)
			e.sub("wss://broker.example/mqtt", fmt.Sprintf("wss://127.0.0.1:%d/mqtt", wssPort))
			e.start(c[1], nil)
			waitListen(e.t, e.port(1884))
			conn := e.dial(e.port(1884))
			defer conn.Close()
			io.WriteString(conn, "board says hi\n")
			if got := readLine(e.t, bufio.NewReader(conn)); got != "board says hi" {
				e.t.Fatalf("through wss: %q", got)
			}
		},
	},
	{
		name: "readme-quickstart",
		cmds: []string{"go run ./cmd/wirecat simulate scripts/thermo.lua --duration 5s"},
		run: func(e *docEnv, c []string) {
			// go run needs the module: this one runs at the repository root.
			// Compiling takes a shared CPU most of a minute, so by default the
			// binary under test (the same source) stands in for go run.
			root, _ := filepath.Abs(filepath.Join("..", ".."))
			cmd := "cd " + root + " && " + c[0]
			if !*docsHeavy {
				cmd = strings.Replace(c[0], "go run ./cmd/wirecat", "wirecat", 1)
			}
			p := e.start(cmd, nil)
			if code := p.wait(120 * time.Second); code != 0 {
				e.t.Fatalf("exit %d: %s", code, p.stderr)
			}
			wantLines(e.t, "the sink's readings", p.stdout.String(), reading, 4)
		},
	},
	{
		name: "readme-test-suite",
		cmds: []string{"go test -race ./..."},
		skip: "the whole test suite, this test included: .ci/run runs it",
	},
	{
		name: "readme-static-build",
		cmds: []string{"CGO_ENABLED=0 go build -o wirecat ./cmd/wirecat"},
		skip: "run by TestREADMEBuildIsStatic (with the output path moved out of the repository)",
	},
	{
		name: "readme-python-sockets",
		cmds: []string{"python3 server.py &", "wirecat send localhost:5000 'Hello, server!'", "wirecat listen localhost:5000"},
		run: func(e *docEnv, c []string) {
			need(e.t, "python3")
			port := e.port(5000)
			// Stand-ins for the article's server.py and client.py.
			e.write("server.py", fmt.Sprintf(`import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("localhost", %d))
s.listen()
c, _ = s.accept()
print(c.recv(1024).decode(), flush=True)
c.close()
`, port), 0o644)
			e.write("client.py", fmt.Sprintf(`import socket
s = socket.create_connection(("localhost", %d))
s.sendall(b"Hello, server!")
s.close()
`, port), 0o644)
			server := e.start(c[0], nil)
			waitListen(e.t, port)
			e.mustRun(c[1], "")
			server.wait(10 * time.Second)
			if got := server.stdout.String(); got != "Hello, server!\n" {
				e.t.Fatalf("server.py printed %q", got)
			}
			listen := e.start(c[2], nil)
			waitListen(e.t, port)
			e.mustRun("python3 client.py", "")
			if code := listen.wait(10 * time.Second); code != 0 || listen.stdout.String() != "Hello, server!" {
				e.t.Fatalf("listen: exit %d, stdout %q", code, listen.stdout)
			}
		},
	},
	{
		name: "readme-end-delimited",
		cmds: []string{"wirecat listen :5000 --frame delim:END", "wirecat send 127.0.0.1:5000 --frame delim:END 'value 1' 'value 2'"},
		run: func(e *docEnv, c []string) {
			// What goes on the wire, as the comment says...
			got := make(chan string, 1)
			ln := e.server(e.port(5000), func(c net.Conn) { b, _ := io.ReadAll(c); got <- string(b) })
			e.mustRun(c[1], "")
			if w := <-got; w != "value 1ENDvalue 2END" {
				e.t.Fatalf("sent %q", w)
			}
			ln.Close()
			// ...and the listener prints one message a line.
			listen := e.start(c[0], nil)
			waitListen(e.t, e.port(5000))
			e.mustRun(c[1], "")
			if code := listen.wait(10 * time.Second); code != 0 || listen.stdout.String() != "value 1\nvalue 2\n" {
				e.t.Fatalf("listen: exit %d, stdout %q", code, listen.stdout)
			}
		},
	},
	{
		name: "readme-comma-readings",
		cmds: []string{`wirecat listen -k :5000 --frame delim:, -o json | jq -r '.text | select(.) | split(":") | "t=\(.[0]) h=\(.[1])"'`,
			"wirecat simulate scripts/thermo.lua --connect 127.0.0.1:5000 --count 10"},
		run: func(e *docEnv, c []string) {
			need(e.t, "jq")
			listen := e.start(c[0], nil)
			waitListen(e.t, e.port(5000))
			sim := e.start(c[1], nil)
			time.Sleep(2500 * time.Millisecond) // ten boards, a reading a second each
			sim.interrupt()
			sim.wait(10 * time.Second)
			listen.signalWirecat(syscall.SIGINT) // jq flushes when its input ends
			listen.wait(10 * time.Second)
			wantLines(e.t, "jq's output", listen.stdout.String(), `^t=\d+\.\d h=\d+$`, 10)
		},
	},
	{
		name: "readme-binary-vs-characters",
		cmds: []string{"wirecat listen :5000 -o hex", "wirecat send 127.0.0.1:5000 --hex '01 f4'"},
		run: func(e *docEnv, c []string) {
			listen := e.start(c[0], nil)
			waitListen(e.t, e.port(5000))
			e.mustRun(c[1], "")
			listen.wait(10 * time.Second)
			wantContains(e.t, "the hex view", listen.stdout.String(), "01 f4")
		},
	},
	{
		name: "readme-udp",
		cmds: []string{"wirecat listen -u :5005 -o text", "wirecat send -u 127.0.0.1:5005 '23.5:41'"},
		run: func(e *docEnv, c []string) {
			port := e.udpPort(5005)
			in := &pipeIn{}
			listen := e.start(c[0], in)
			waitUDP(e.t, port)
			send := e.start(c[1], nil)
			listen.waitOutput("23.5:41", 10*time.Second)
			if !regexp.MustCompile(`(?m)` + textLine + `← 23\.5:41$`).MatchString(listen.stdout.String()) {
				e.t.Fatalf("the text view should tag the datagram with its sender: %q", listen.stdout)
			}
			io.WriteString(in.w, "ok\n") // stdin answers whoever spoke last
			if code := send.wait(10 * time.Second); code != 0 || send.stdout.String() != "ok\n" {
				e.t.Fatalf("send: exit %d, stdout %q", code, send.stdout)
			}
		},
	},
	{
		name: "http-get-raw-socket",
		cmds: []string{`printf 'GET / HTTP/1.0\r\nHost: example.com\r\n\r\n' | wirecat connect example.com:80`,
			`printf 'GET / HTTP/1.0\r\n\r\n' | wirecat connect example.com 80`},
		run: func(e *docEnv, c []string) {
			port := freePort(e.t)
			e.sub("example.com:80", fmt.Sprintf("127.0.0.1:%d", port))
			e.sub("example.com 80", fmt.Sprintf("127.0.0.1 %d", port))
			e.server(port, httpServer)
			for _, cmd := range c {
				if out := e.mustRun(cmd, ""); out != httpResponse {
					e.t.Fatalf("%s printed %q, want the whole response", cmd, out)
				}
			}
		},
	},
	{
		name: "dtls",
		cmds: []string{"wirecat listen -k dtls://127.0.0.1:5684 --psk c0ffee --psk-identity s1",
			"wirecat connect dtls://127.0.0.1:5684 --psk c0ffee --psk-identity s1",
			"wirecat relay -u :5683 dtls://127.0.0.1:5684 --psk c0ffee --psk-identity s1",
			"wirecat simulate scripts/coap-sensor.lua --arg addr=127.0.0.1:5684",
			"coap-client-openssl -m get -u sensor-1 -k 'secret!' coaps://127.0.0.1:5684/temperature"},
		run: func(e *docEnv, c []string) {
			t := e.t
			lport, rport := e.udpPort(5684), e.udpPort(5683)
			listen := e.start(c[0], nil)
			waitUDP(t, lport)
			e.mustRun(c[1], "hello over dtls\n")
			listen.waitOutput("hello over dtls\n", 10*time.Second)
			relay := e.start(c[2], nil)
			waitUDP(t, rport)
			board, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", rport))
			if err != nil {
				t.Fatal(err)
			}
			defer board.Close()
			io.WriteString(board, "via the relay\n")
			listen.waitOutput("via the relay\n", 10*time.Second)
			relay.interrupt()
			listen.interrupt()
			relay.wait(10 * time.Second)
			listen.wait(10 * time.Second)

			need(t, "coap-client-openssl")
			sim := e.start(c[3], nil)
			waitUDP(t, lport)
			if out := e.mustRun(c[4], ""); !regexp.MustCompile(`^\d+\.\d\s*$`).MatchString(out) {
				t.Fatalf("coap-client printed %q", out)
			}
			sim.interrupt()
			sim.wait(10 * time.Second)
		},
	},
	{
		name: "tls-pinned",
		cmds: []string{"wirecat listen tls://127.0.0.1:8443", "wirecat connect tls://127.0.0.1:8443 --pin sha256:6b1f...e2",
			"openssl s_client -connect 127.0.0.1:8443 -quiet", "wirecat connect tls://127.0.0.1:8443 --pin sha256:3f2a..."},
		run: func(e *docEnv, c []string) {
			for _, client := range []string{c[1], c[3]} {
				listen, pin := e.tlsListen(c[0], nil)
				e.sub("sha256:6b1f...e2", pin)
				e.sub("sha256:3f2a...", pin)
				out := e.mustRun(client, "hello over tls\n")
				if out != "" {
					e.t.Fatalf("%s printed %q", client, out)
				}
				listen.wait(10 * time.Second)
				if got := listen.stdout.String(); got != "hello over tls\n" {
					e.t.Fatalf("the listener printed %q", got)
				}
			}
			need(e.t, "openssl")
			in := &pipeIn{}
			listen, _ := e.tlsListen(c[0], in)
			client := e.start(c[2], strings.NewReader("from openssl\n"))
			listen.waitOutput("from openssl", 10*time.Second)
			io.WriteString(in.w, "from wirecat\n")
			client.waitOutput("from wirecat", 10*time.Second)
		},
	},
	{
		name: "readme-led",
		cmds: []string{"wirecat listen 127.0.0.1:5000 --frame line", "wirecat simulate scripts/led-board.lua --connect 127.0.0.1:5000"},
		run: func(e *docEnv, c []string) {
			in := &pipeIn{}
			listen := e.start(c[0], in)
			waitListen(e.t, e.port(5000))
			sim := e.start(c[1], nil)
			listen.waitOutput("STATE OFF\n", 10*time.Second)
			io.WriteString(in.w, "LED ON\n")
			listen.waitOutput("STATE ON\n", 10*time.Second)
			in.w.Close()
			if code := sim.wait(10 * time.Second); code != 0 {
				e.t.Fatalf("simulate exited %d", code)
			}
			if code := listen.wait(10 * time.Second); code != 0 || listen.stdout.String() != "STATE OFF\nSTATE ON\n" {
				e.t.Fatalf("listen: exit %d, stdout %q", code, listen.stdout)
			}
		},
	},
	{
		name: "readme-relay-record-replay",
		cmds: []string{"wirecat relay :7000 127.0.0.1:7001 --frame line -o text --record board.jsonl",
			"wirecat replay board.jsonl --as client --check",
			"wirecat replay board.jsonl --as server --listen 127.0.0.1:7001",
			"wirecat show board.jsonl --pcap board.pcapng",
			"wirecat show board.jsonl", "wirecat show board.jsonl -o hex | less",
			`wirecat show board.jsonl -o json | jq -c 'select(.from == "server")'`},
		run: func(e *docEnv, c []string) {
			out := recordRelay(e, c[0])
			wantContains(e.t, "the relay's text view", out, "client→server temp 21.5", "server→client ok")
			// The recorded server still answers the same.
			e.mustRun(c[1], "")
			e.mustRun(c[3], "")
			if b := e.read("board.pcapng"); !strings.HasPrefix(b, string(pcapngMagic)) {
				e.t.Fatalf("board.pcapng is not a pcapng capture: % x", b[:min(8, len(b))])
			}
			wantContains(e.t, "show", e.mustRun(c[4], ""), "client→server temp 21.5", "server→client ok")
			if have(e.t, "less") {
				wantContains(e.t, "show -o hex", e.mustRun(c[5], ""), "74 65 6d 70 20 32 31 2e  35") // "temp 21.5"
			}
			if have(e.t, "jq") {
				wantLines(e.t, "show -o json | jq", e.mustRun(c[6], ""), `"from":"server"`, 1)
			}
			// The recorded server as a mock, on a port of its own.
			e.sub(":7001", ":"+strconv.Itoa(freePort(e.t)))
			mock := e.start(c[2], nil)
			waitListen(e.t, e.port(7001))
			m := e.dial(e.port(7001))
			io.WriteString(m, "temp 21.5\n")
			if got := readLine(e.t, bufio.NewReader(m)); got != "ok" {
				e.t.Fatalf("the mock answered %q", got)
			}
			m.Close()
			mock.interrupt()
			mock.wait(10 * time.Second)
		},
	},
	{
		name: "relay-tls-in-front",
		cmds: []string{"wirecat relay tls://:8883 127.0.0.1:1883"},
		run: func(e *docEnv, c []string) {
			e.server(e.port(1883), func(c net.Conn) { io.Copy(c, c) })
			relay := e.start(c[0], nil)
			waitListen(e.t, e.port(8883))
			conn, err := tls.Dial("tcp", e.addr(8883), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				e.t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(conn, "ping\n")
			if got := readLine(e.t, bufio.NewReader(conn)); got != "ping" {
				e.t.Fatalf("through the TLS relay: %q", got)
			}
			relay.interrupt()
		},
	},
	{
		name: "relay-to-tls-broker",
		cmds: []string{"wirecat relay :1883 tls://broker:8883 --ca ca.pem", "wirecat relay :1883 tls://broker.example:8883 --ca ca.pem"},
		run: func(e *docEnv, c []string) {
			cfg := selfSigned(e)
			ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
			if err != nil {
				e.t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { defer c.Close(); io.Copy(c, c) }()
				}
			}()
			e.sub("tls://broker:8883", "tls://"+ln.Addr().String())
			e.sub("tls://broker.example:8883", "tls://"+ln.Addr().String())
			for _, cmd := range c {
				relay := e.start(cmd, nil)
				waitListen(e.t, e.port(1883))
				conn := e.dial(e.port(1883))
				io.WriteString(conn, "ping\n")
				if got := readLine(e.t, bufio.NewReader(conn)); got != "ping" {
					e.t.Fatalf("%s: got %q", cmd, got)
				}
				conn.Close()
				relay.interrupt()
				relay.wait(10 * time.Second)
			}
		},
	},
	{
		name: "relay-udp-to-tcp",
		cmds: []string{"wirecat relay -u :5005 tcp://127.0.0.1:7000 --frame line"},
		run: func(e *docEnv, c []string) {
			got := make(chan string, 1)
			e.server(e.port(7000), lineServer(func(l string) string { got <- l; return "ok" }))
			port := e.udpPort(5005)
			e.start(c[0], nil)
			waitUDP(e.t, port)
			u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				e.t.Fatal(err)
			}
			defer u.Close()
			u.SetDeadline(time.Now().Add(10 * time.Second))
			u.Write([]byte("temp 21.5"))
			if l := <-got; l != "temp 21.5" {
				e.t.Fatalf("the TCP server got %q", l)
			}
			buf := make([]byte, 100)
			n, err := u.Read(buf)
			if err != nil || string(buf[:n]) != "ok" {
				e.t.Fatalf("the UDP board got %q, %v", buf[:n], err)
			}
		},
	},
	{
		name: "relay-watch",
		cmds: []string{"wirecat relay :7000 127.0.0.1:7001 --frame line -o text",
			"wirecat relay :7000 127.0.0.1:7001 --frame line -o text | less"},
		run: func(e *docEnv, c []string) {
			out := recordRelay(e, c[0])
			// docs/relay.md shows this view.
			wantLines(e.t, "the relay's view", out, textLine+`(open tcp \(relayed\)|client→server temp 21\.5|server→client ok|closed.*)$`, 3)
			wantContains(e.t, "the relay's view", out, "open tcp (relayed)", "client→server temp 21.5", "server→client ok")
			if have(e.t, "less") {
				// The same view through a pager (not a terminal here: less
				// passes it on), on ports of its own.
				e.sub(":7000", ":"+strconv.Itoa(freePort(e.t)))
				e.sub(":7001", ":"+strconv.Itoa(freePort(e.t)))
				out := recordRelay(e, c[1])
				wantContains(e.t, "the relay's view through less", out, "client→server temp 21.5", "server→client ok")
			}
		},
	},
	{
		name: "relay-faults",
		cmds: []string{"wirecat relay :7000 127.0.0.1:7001 --delay up:200ms --drop 0.1",
			"wirecat relay :7000 127.0.0.1:7001 --frame line --delay up:200ms --drop 0.1"},
		run: func(e *docEnv, c []string) {
			e.server(e.port(7001), func(c net.Conn) { io.Copy(c, c) })
			for _, cmd := range c {
				relay := e.start(cmd, nil)
				waitListen(e.t, e.port(7000))
				conn := e.dial(e.port(7000))
				sent := map[string]time.Time{}
				for i := 1; i <= 10; i++ {
					m := fmt.Sprintf("m%d", i)
					sent[m] = time.Now()
					io.WriteString(conn, m+"\n")
					time.Sleep(50 * time.Millisecond) // one read, one message each
				}
				conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				r := bufio.NewReader(conn)
				got := 0
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						break
					}
					m := strings.TrimSpace(l)
					if d := time.Since(sent[m]); d < 190*time.Millisecond {
						e.t.Fatalf("%s: %s came back after %v, before the 200ms delay", cmd, m, d)
					}
					got++
				}
				if got < 4 || got > 10 {
					e.t.Fatalf("%s: %d of 10 messages came back (a 10%% drop)", cmd, got)
				}
				conn.Close()
				relay.interrupt()
				relay.wait(10 * time.Second)
			}
		},
	},
	{
		name: "relay-hooks",
		cmds: []string{"wirecat relay :7000 127.0.0.1:7001 --frame line --script scripts/hooks-upper.lua"},
		run: func(e *docEnv, c []string) {
			got := make(chan string, 10)
			e.server(e.port(7001), lineServer(func(l string) string { got <- l; return "" }))
			relay := e.start(c[0], nil)
			waitListen(e.t, e.port(7000))
			conn := e.dial(e.port(7000))
			io.WriteString(conn, "hello\ndrop\na|b|c\n")
			conn.Close()
			var all []string
			for len(all) < 4 {
				select {
				case l := <-got:
					all = append(all, l)
				case <-time.After(10 * time.Second):
					e.t.Fatalf("the server got only %q", all)
				}
			}
			if strings.Join(all, ",") != "HELLO,A,B,C" {
				e.t.Fatalf("the server got %q, want HELLO then A, B, C (drop dropped)", all)
			}
			relay.waitStderr("close #", 10*time.Second) // the hooks' print goes to stderr
			relay.interrupt()
		},
	},
	{
		name: "relay-hooks-unsafe",
		cmds: []string{"wirecat relay :7000 127.0.0.1:7001 --frame line --script audit.lua --lua-unsafe"},
		run: func(e *docEnv, c []string) {
			// audit.lua: the doc's "hook that appends to a log file".
			e.write("audit.lua", `function on_message(conn, dir, msg)
  local f = assert(io.open("audit.log", "a"))
  f:write(dir, " ", msg, "\n")
  f:close()
  return msg
end
`, 0o644)
			got := make(chan string, 1)
			e.server(e.port(7001), lineServer(func(l string) string { got <- l; return "" }))
			relay := e.start(c[0], nil)
			waitListen(e.t, e.port(7000))
			conn := e.dial(e.port(7000))
			io.WriteString(conn, "temp 21.5\n")
			if l := <-got; l != "temp 21.5" {
				e.t.Fatalf("the server got %q", l)
			}
			waitFor(e.t, 10*time.Second, "the message in audit.log", func() bool { return e.read("audit.log") == "client temp 21.5\n" })
			relay.interrupt()
		},
	},
	{
		name: "everyday",
		cmds: []string{"wirecat listen -k :5000 > log &", "wirecat listen -k 127.0.0.1:7000 --exec 'cat'",
			"wirecat connect 127.0.0.1:5000 --frame line -o text", "wirecat send 127.0.0.1:5000 --frame len:u16be --hex '01 02 03' --replies 1",
			`wirecat listen 127.0.0.1:7000 --exec 'echo "hello $WIRECAT_REMOTE_ADDR port $WIRECAT_REMOTE_PORT"'`},
		run: func(e *docEnv, c []string) {
			t := e.t
			// A background receiver: stdin is /dev/null, two devices come and go.
			bg := e.start(c[0], nil)
			waitListen(t, e.port(5000))
			for _, m := range []string{"a 1\n", "b 2\n"} {
				conn := e.dial(e.port(5000))
				io.WriteString(conn, m)
				conn.Close()
			}
			waitFor(t, 10*time.Second, "both devices in the log", func() bool {
				l := e.read("log")
				return strings.Contains(l, "a 1\n") && strings.Contains(l, "b 2\n")
			})
			bg.interrupt()
			bg.wait(10 * time.Second)

			echo := e.start(c[1], nil)
			waitListen(t, e.port(7000))
			conn := e.dial(e.port(7000))
			io.WriteString(conn, "echo me\n")
			if got := readLine(t, bufio.NewReader(conn)); got != "echo me" {
				t.Fatalf("the echo server answered %q", got)
			}
			conn.Close()
			echo.interrupt()
			echo.wait(10 * time.Second)

			// connect's human view of what the server says.
			ln := e.server(e.port(5000), func(c net.Conn) { io.WriteString(c, "hello\n") })
			out := e.mustRun(c[2], "")
			wantLines(t, "connect -o text", out, textLine+`(open tcp.*|← hello|closed.*)$`, 2)
			wantContains(t, "connect -o text", out, "← hello")
			ln.Close()

			// A length-prefixed exchange.
			e.sub(":5000", ":"+strconv.Itoa(freePort(t)))
			wire := make(chan []byte, 1)
			e.server(e.port(5000), func(c net.Conn) {
				b := make([]byte, 5)
				io.ReadFull(c, b)
				wire <- b
				c.Write([]byte{0, 2, 'o', 'k'})
			})
			if out := e.mustRun(c[3], ""); out != "ok\n" {
				t.Fatalf("send printed %q", out)
			}
			if w := <-wire; !bytes.Equal(w, []byte{0, 3, 1, 2, 3}) {
				t.Fatalf("on the wire: % x", w)
			}

			// --exec's environment.
			e.sub(":7000", ":"+strconv.Itoa(freePort(t)))
			hello := e.start(c[4], nil)
			waitListen(t, e.port(7000))
			conn = e.dial(e.port(7000))
			b, _ := io.ReadAll(conn)
			want := fmt.Sprintf("hello 127.0.0.1 port %d\n", conn.LocalAddr().(*net.TCPAddr).Port)
			if string(b) != want {
				t.Fatalf("--exec said %q, want %q", b, want)
			}
			hello.wait(10 * time.Second)
		},
	},
	{
		name: "completion",
		cmds: []string{"source <(wirecat completion bash)", "wirecat completion fish > ~/.config/fish/completions/wirecat.fish",
			`wirecat completion zsh > "${fpath[1]}/_wirecat"`},
		run: func(e *docEnv, c []string) {
			need(e.t, "bash")
			if out := e.mustRun("exec bash -c '"+c[0]+" && complete -p wirecat'", ""); !strings.Contains(out, "wirecat") {
				e.t.Fatalf("bash has no completion for wirecat: %q", out)
			}
			os.MkdirAll(e.file(".config/fish/completions"), 0o755)
			e.mustRun(c[1], "")
			wantContains(e.t, "wirecat.fish", e.read(".config/fish/completions/wirecat.fish"), "complete -c 'wirecat'")
			if !have(e.t, "zsh") {
				e.t.Log("zsh not installed: its line is not run")
				return
			}
			os.MkdirAll(e.file("zfunc"), 0o755)
			e.write("zcmd", "fpath=("+e.file("zfunc")+" $fpath)\n"+c[2]+"\n", 0o644)
			e.mustRun("zsh -f zcmd", "")
			wantContains(e.t, "_wirecat", e.read("zfunc/_wirecat"), "#compdef wirecat")
		},
	},
	{
		name: "completion-powershell",
		cmds: []string{"wirecat completion powershell | Out-String | Invoke-Expression"},
		skip: "PowerShell syntax; TestCompletionsFresh checks the script",
	},
	{
		name: "cli-listen",
		cmds: []string{"wirecat listen 5000", "wirecat listen -k :5000 --frame line -o text > log &", "wirecat listen -u :5005 -o hex",
			"wirecat listen -k 127.0.0.1:8080 --exec 'cat'"},
		run: func(e *docEnv, c []string) {
			t := e.t
			e.sub("listen 5000", fmt.Sprintf("listen %d", e.port(5000)))
			nc := e.start(c[0], nil)
			waitListen(t, e.port(5000))
			conn := e.dial(e.port(5000))
			io.WriteString(conn, "like nc -l\n")
			conn.Close()
			if code := nc.wait(10 * time.Second); code != 0 || nc.stdout.String() != "like nc -l\n" {
				t.Fatalf("listen: exit %d, stdout %q", code, nc.stdout)
			}
			bg := e.start(c[1], nil)
			waitListen(t, e.port(5000))
			conn = e.dial(e.port(5000))
			io.WriteString(conn, "temp 21.5\n")
			conn.Close()
			waitFor(t, 10*time.Second, "the message in the log", func() bool { return strings.Contains(e.read("log"), "← temp 21.5") })
			bg.interrupt()
			port := e.udpPort(5005)
			hex := e.start(c[2], nil)
			waitUDP(t, port)
			u, _ := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
			u.Write([]byte{1, 2, 0xff})
			u.Close()
			hex.waitOutput("01 02 ff", 10*time.Second)
			hex.interrupt()
			echo := e.start(c[3], nil)
			waitListen(t, e.port(8080))
			conn = e.dial(e.port(8080))
			io.WriteString(conn, "echo\n")
			if got := readLine(t, bufio.NewReader(conn)); got != "echo" {
				t.Fatalf("echo server: %q", got)
			}
			echo.interrupt()
		},
	},
	{
		name: "cli-listen-udp-bounds",
		cmds: []string{"wirecat listen -u -k :5005 --idle 2m --max-conns 500"},
		run: func(e *docEnv, c []string) {
			t := e.t
			port := e.udpPort(5005)
			p := e.start(c[0], nil)
			waitUDP(t, port)
			for _, s := range []string{"sensor 1\n", "sensor 2\n"} {
				u, _ := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
				u.Write([]byte(s))
				u.Close()
				p.waitOutput(s, 10*time.Second)
			}
			p.interrupt()
		},
	},
	{
		name: "cli-connect",
		cmds: []string{"wirecat connect -u 127.0.0.1 5005", "wirecat connect unix:///tmp/board.sock --frame line -o text",
			"wirecat connect 127.0.0.1:5000 --frame delim:END -o json"},
		run: func(e *docEnv, c []string) {
			t := e.t
			pc := e.udpPeer(5005)
			e.sub("127.0.0.1 5005", "127.0.0.1 "+strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port))
			in := &pipeIn{}
			udp := e.start(c[0], in)
			io.WriteString(in.w, "hi\n")
			buf := make([]byte, 100)
			n, from, err := pc.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "hi\n" {
				t.Fatalf("the UDP peer got %q, %v", buf[:n], err)
			}
			pc.WriteTo([]byte("yo\n"), from)
			udp.waitOutput("yo\n", 10*time.Second)
			udp.interrupt()

			sock := e.file("board.sock")
			e.sub("/tmp/board.sock", sock)
			ul, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer ul.Close()
			go func() {
				if c, err := ul.Accept(); err == nil {
					io.WriteString(c, "STATE ON\n")
					c.Close()
				}
			}()
			out := e.mustRun(c[1], "")
			wantContains(t, "connect unix -o text", out, "← STATE ON")

			e.server(e.port(5000), func(c net.Conn) { io.WriteString(c, "value 1ENDvalue 2END") })
			out = e.mustRun(c[2], "")
			var texts []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				var ev struct{ Event, Text string }
				if err := json.Unmarshal([]byte(l), &ev); err != nil {
					t.Fatalf("not JSON: %q", l)
				}
				if ev.Event == "data" {
					texts = append(texts, ev.Text)
				}
			}
			if strings.Join(texts, "|") != "value 1|value 2" {
				t.Fatalf("data events %q", texts)
			}
		},
	},
	{
		name: "cli-netcat-habits",
		cmds: []string{"wirecat connect -w 2s -s 127.0.0.2 127.0.0.1 5000", "wirecat connect -z 127.0.0.1 1-1024",
			"wirecat listen 127.0.0.1:0", "wirecat help", "wirecat help listen"},
		run: func(e *docEnv, c []string) {
			t := e.t
			port := e.port(5000)
			from := make(chan string, 1)
			e.server(port, func(c net.Conn) {
				from <- c.RemoteAddr().(*net.TCPAddr).IP.String()
				io.WriteString(c, "hi\n")
			})
			e.sub("127.0.0.1 5000", fmt.Sprintf("127.0.0.1 %d", port))
			if out := e.mustRun(c[0], ""); out != "hi\n" {
				t.Fatalf("connect -w -s printed %q", out)
			}
			if got := <-from; got != "127.0.0.2" {
				t.Fatalf("connected from %s", got)
			}
			// -z: a listener in 1-1024 needs privileges; scan a range around one of ours.
			ln := e.server(freePort(t), func(net.Conn) {})
			open := ln.Addr().(*net.TCPAddr).Port
			e.sub("1-1024", fmt.Sprintf("%d-%d", open-2, open+2))
			if out := e.mustRun(c[1], ""); !strings.Contains(out, fmt.Sprintf("%d open\n", open)) {
				t.Fatalf("connect -z printed %q", out)
			}
			zero := e.start(c[2], &pipeIn{})
			zero.waitStderr("wirecat: listening on tcp://127.0.0.1:", 10*time.Second)
			m := regexp.MustCompile(`tcp://127\.0\.0\.1:(\d+)`).FindStringSubmatch(zero.stderr.String())
			p, _ := strconv.Atoi(m[1])
			conn := e.dial(p)
			io.WriteString(conn, "to the chosen port\n")
			conn.Close()
			zero.waitOutput("to the chosen port\n", 10*time.Second)
			if out := e.mustRun(c[3], ""); !strings.HasPrefix(out, "Usage: wirecat <command>") {
				t.Fatalf("wirecat help: %q", out)
			}
			if out := e.mustRun(c[4], ""); !strings.HasPrefix(out, "Usage: wirecat listen") {
				t.Fatalf("wirecat help listen: %q", out)
			}
		},
	},
	{
		name: "cli-listen-habits",
		cmds: []string{"wirecat listen -u -k 127.0.0.1:5005 --exec 'sed -u s/^/ack:/'", "wirecat listen -k 127.0.0.1:6000 --chat",
			"wirecat listen -k 127.0.0.1:1883 --broker", "wirecat listen 127.0.0.1:5000 --frame line --send 'LED ON' --until 'STATE ON' --wait 5s"},
		run: func(e *docEnv, c []string) {
			t := e.t
			port := e.udpPort(5005)
			x := e.start(c[0], nil)
			waitUDP(t, port)
			u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			u.Write([]byte("temp 21\n"))
			u.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 100)
			if n, err := u.Read(buf); err != nil || string(buf[:n]) != "ack:temp 21\n" {
				t.Fatalf("the sender got %q, %v", buf[:n], err)
			}
			x.interrupt()

			for i, want := range []string{"<user1> hi\n", "hi\n"} { // --chat tags, --broker does not
				e.start(c[1+i], nil)
				p := e.port([]int{6000, 1883}[i])
				waitListen(t, p)
				a := e.dial(p)
				time.Sleep(50 * time.Millisecond) // a joins first
				b := e.dial(p)
				rb := bufio.NewReader(b)
				ra := bufio.NewReader(a)
				if i == 0 {
					readLine(t, ra) // <announce> user2 joined
				} else {
					io.WriteString(b, "ready\n") // once a hears b, both are in
					readLine(t, ra)
				}
				io.WriteString(a, "hi\n")
				b.SetReadDeadline(time.Now().Add(10 * time.Second))
				got, err := rb.ReadString('\n')
				for err == nil && strings.HasPrefix(got, "<announce> ") {
					// a's own join, when the listener took b in first
					got, err = rb.ReadString('\n')
				}
				if err != nil || got != want {
					t.Fatalf("%s: the other client got %q, %v", c[1+i], got, err)
				}
			}

			led := e.start(c[3], nil)
			waitListen(t, e.port(5000))
			board := e.dial(e.port(5000))
			rb := bufio.NewReader(board)
			if got := readLine(t, rb); got != "LED ON" {
				t.Fatalf("the board got %q", got)
			}
			io.WriteString(board, "STATE ON\n")
			if code := led.wait(10 * time.Second); code != 0 {
				t.Fatalf("listen --send --until: exit %d, %s", code, led.stderr)
			}
		},
	},
	{
		name: "cli-send",
		cmds: []string{"wirecat send 127.0.0.1:5000 'Hello, server!'", `wirecat send 127.0.0.1:80 'GET / HTTP/1.0\r\n\r\n'`,
			"wirecat send -u 127.0.0.1:5005 --hex '01 02 ff'", "wirecat send 127.0.0.1:5000 --frame line 'LED ON' --until 'LED is ON'",
			"sensor-dump | wirecat send tcp://127.0.0.1:5000 --wait 0"},
		run: func(e *docEnv, c []string) {
			t := e.t
			got := make(chan string, 1)
			ln := e.server(e.port(5000), func(c net.Conn) { b, _ := io.ReadAll(c); got <- string(b) })
			e.mustRun(c[0], "")
			if g := <-got; g != "Hello, server!" {
				t.Fatalf("the server got %q", g)
			}
			e.server(e.port(80), httpServer)
			if out := e.mustRun(c[1], ""); out != httpResponse {
				t.Fatalf("send printed %q", out)
			}
			pc := e.udpPeer(5005)
			e.mustRun(c[2], "")
			buf := make([]byte, 10)
			if n, _, err := pc.ReadFrom(buf); err != nil || !bytes.Equal(buf[:n], []byte{1, 2, 0xff}) {
				t.Fatalf("the UDP peer got % x, %v", buf[:n], err)
			}
			ln.Close()
			e.sub(":5000", ":"+strconv.Itoa(freePort(t)))
			ln = e.server(e.port(5000), lineServer(func(l string) string {
				if l == "LED ON" {
					return "LED is ON"
				}
				return ""
			}))
			if out := e.mustRun(c[3], ""); out != "LED is ON\n" {
				t.Fatalf("send printed %q", out)
			}
			ln.Close()
			e.sub(":5000", ":"+strconv.Itoa(freePort(t)))
			e.server(e.port(5000), func(c net.Conn) { b, _ := io.ReadAll(c); got <- string(b) })
			e.tool("sensor-dump", "printf '21.5\\n22.0\\n'\n")
			e.mustRun(c[4], "")
			if g := <-got; g != "21.5\n22.0\n" {
				t.Fatalf("the server got %q", g)
			}
		},
	},
	{
		name: "cli-send-repeat",
		cmds: []string{"wirecat send 127.0.0.1:5000 --frame delim:, '23.5:41' --repeat 10 --interval 1s"},
		run: func(e *docEnv, c []string) {
			got := make(chan string, 1)
			e.server(e.port(5000), func(c net.Conn) { b, _ := io.ReadAll(c); got <- string(b) })
			start := time.Now()
			e.mustRun(c[0], "")
			if g := <-got; g != strings.Repeat("23.5:41,", 10) {
				e.t.Fatalf("the server got %q", g)
			}
			if d := time.Since(start); d < 9*time.Second {
				e.t.Fatalf("10 messages a second apart took %v", d)
			}
		},
	},
	{
		name: "cli-simulate",
		cmds: []string{"wirecat simulate scripts/thermo.lua", "wirecat simulate scripts/analog.lua --arg encoding=binary -o hex",
			"wirecat simulate scripts/particle-web.lua --listen 127.0.0.1:8080"},
		run: func(e *docEnv, c []string) {
			t := e.t
			sim := e.start(c[0], nil)
			sim.waitLines(2, 10*time.Second)
			sim.interrupt()
			sim.wait(10 * time.Second)
			wantLines(t, "thermo through the sink", sim.stdout.String(), reading, 2)

			sim = e.start(c[1], nil)
			waitFor(t, 10*time.Second, "two readings in hex", func() bool {
				return len(regexp.MustCompile(`(?m)^0{8}  [0-9a-f]{2} [0-9a-f]{2} `).FindAllString(sim.stdout.String(), -1)) >= 2
			})
			sim.interrupt()
			sim.wait(10 * time.Second)

			sim = e.start(c[2], nil)
			waitListen(t, e.port(8080))
			for _, path := range []string{"/", "/status"} {
				resp, err := http.Get("http://" + e.addr(8080) + path)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || len(b) == 0 {
					t.Fatalf("GET %s: %d %q", path, resp.StatusCode, b)
				}
			}
			sim.interrupt()
		},
	},
	{
		name: "cli-simulate-fleet",
		cmds: []string{"wirecat simulate scripts/thermo.lua --count 1000 --ramp 5s --connect 127.0.0.1:5000"},
		run: func(e *docEnv, c []string) {
			var mu sync.Mutex
			conns := 0
			e.server(e.port(5000), func(c net.Conn) {
				mu.Lock()
				conns++
				mu.Unlock()
				io.Copy(io.Discard, c)
			})
			sim := e.start(c[0], nil)
			waitFor(e.t, 20*time.Second, "1000 boards connected", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return conns >= 1000
			})
			sim.interrupt()
			sim.wait(10 * time.Second)
			wantContains(e.t, "the summary", sim.stderr.String(), "1000 devices started")
		},
	},
	{
		name: "replay",
		cmds: []string{"wirecat connect 127.0.0.1:5000 --frame line --record led.jsonl", "wirecat replay led.jsonl --check",
			"wirecat replay led.jsonl --to 10.0.0.7:5000 --speed max", "wirecat replay led.jsonl --as server --listen :5000",
			"printf 'LED ON\\nLED OFF\\n' | wirecat connect 127.0.0.1:5000 --frame line --record led.jsonl",
			"wirecat show led.jsonl", "wirecat show led.jsonl -o hex", "wirecat show led.jsonl -o json",
			"wirecat show led.jsonl --pcap led.pcapng", "tshark -r led.pcapng -q -z follow,tcp,ascii,0",
			`jq -c 'select(.ev == "data") | {t, from, text}' session.jsonl`},
		run: func(e *docEnv, c []string) {
			t := e.t
			e.server(e.port(5000), lineServer(ledBoard))
			docRecordLED(e, c[0], "LED ON\n")
			docRecordLED(e, c[4], "")
			e.sub("10.0.0.7:5000", e.addr(5000))
			e.mustRun(c[1], "")
			e.mustRun(c[2], "")
			wantContains(t, "show", e.mustRun(c[5], ""), "→ LED ON", "← STATE ON", "→ LED OFF", "← STATE OFF")
			wantContains(t, "show -o hex", e.mustRun(c[6], ""), "4c 45 44 20 4f 4e") // LED ON
			for _, l := range strings.Split(strings.TrimSpace(e.mustRun(c[7], "")), "\n") {
				if !json.Valid([]byte(l)) {
					t.Fatalf("show -o json: %q is not JSON", l)
				}
			}
			e.mustRun(c[8], "")
			if b := e.read("led.pcapng"); !strings.HasPrefix(b, string(pcapngMagic)) {
				t.Fatal("led.pcapng is not a pcapng capture")
			}
			if have(e.t, "tshark") {
				wantContains(t, "tshark's stream", e.mustRun(c[9], ""), "LED ON", "STATE ON")
			}
			if have(e.t, "jq") {
				os.Link(e.file("led.jsonl"), e.file("session.jsonl"))
				wantLines(t, "jq", e.mustRun(c[10], ""), `^\{"t":[0-9.e-]+,"from":"(client|server)","text":"(LED|STATE) O(N|FF)"\}$`, 4)
			}
			// The recorded board as a mock, on the board's own port.
			e.sub(":5000", ":"+strconv.Itoa(freePort(t)))
			mock := e.start(c[3], nil)
			waitListen(t, e.port(5000))
			conn := e.dial(e.port(5000))
			r := bufio.NewReader(conn)
			io.WriteString(conn, "LED ON\n")
			if got := readLine(t, r); got != "STATE ON" {
				t.Fatalf("the mock answered %q", got)
			}
			io.WriteString(conn, "LED OFF\n")
			if got := readLine(t, r); got != "STATE OFF" {
				t.Fatalf("the mock answered %q", got)
			}
			conn.Close()
			mock.interrupt()
		},
	},
	{
		name: "replay-http-mock",
		cmds: []string{"wirecat replay http.jsonl --as server --listen 127.0.0.1:8080 --once", "curl http://127.0.0.1:8080/status.html"},
		run: func(e *docEnv, c []string) {
			need(e.t, "curl")
			e.server(e.port(9999), httpServer) // the recording: curl's request to a server
			e.mustRun(`printf 'GET /status.html HTTP/1.0\r\n\r\n' | wirecat connect 127.0.0.1:9999 --record http.jsonl`, "")
			mock := e.start(c[0], nil)
			waitListen(e.t, e.port(8080))
			if out := e.mustRun(c[1], ""); out != "hello\n" {
				e.t.Fatalf("curl printed %q", out)
			}
			if code := mock.wait(10 * time.Second); code != 0 {
				e.t.Fatalf("replay --once exited %d", code)
			}
		},
	},
	{
		name: "replay-fleet",
		cmds: []string{"wirecat listen -k :5000 --frame line --record fleet.jsonl > /dev/null &", "wirecat replay fleet.jsonl --as client --conn 3 --check --timeout 2s"},
		run: func(e *docEnv, c []string) {
			t := e.t
			listen := e.start(c[0], nil)
			waitListen(t, e.port(5000))
			for i := 1; i <= 3; i++ {
				conn := e.dial(e.port(5000))
				fmt.Fprintf(conn, "board %d\n", i)
				conn.Close()
				time.Sleep(50 * time.Millisecond)
			}
			waitFor(t, 10*time.Second, "three closes recorded", func() bool {
				return strings.Count(e.read("fleet.jsonl"), `"ev":"close"`) >= 3
			})
			listen.interrupt()
			listen.wait(10 * time.Second)
			// Connection 3 alone, to the server again: what it sent in the
			// recording arrives (which board that was is the accept order's).
			var want string
			for _, l := range strings.Split(e.read("fleet.jsonl"), "\n") {
				var ev struct {
					Ev, Text string
					Conn     int
				}
				if json.Unmarshal([]byte(l), &ev) == nil && ev.Ev == "data" && ev.Conn == 3 {
					want = ev.Text + "\n"
				}
			}
			got := make(chan string, 1)
			e.server(e.port(5000), func(c net.Conn) { b, _ := io.ReadAll(c); got <- string(b) })
			e.mustRun(c[1], "")
			if g := <-got; g != want || !strings.HasPrefix(g, "board ") {
				t.Fatalf("the server got %q, want connection 3's %q\nfleet.jsonl:\n%s", g, want, e.read("fleet.jsonl"))
			}
		},
	},
	{
		name: "lua-echo-server",
		cmds: []string{"wirecat listen -k 127.0.0.1:7000 --exec cat &"},
		run: func(e *docEnv, c []string) {
			echo := e.start(c[0], nil)
			waitListen(e.t, e.port(7000))
			conn := e.dial(e.port(7000))
			io.WriteString(conn, "20.1:41\n")
			if got := readLine(e.t, bufio.NewReader(conn)); got != "20.1:41" {
				e.t.Fatalf("the echo server answered %q", got)
			}
			echo.interrupt()
		},
	},
	{
		name:   "lua-performance",
		serial: true,
		cmds: []string{"wirecat listen -k 127.0.0.1:5000 --recv-only > /dev/null &",
			"/usr/bin/time -f 'peak RSS %M KiB' wirecat simulate scripts/thermo.lua -n 10000 --ramp 0 --duration 3s --connect 127.0.0.1:5000"},
		run: func(e *docEnv, c []string) {
			if !*docsHeavy {
				e.t.Skip("a benchmark (10,000 devices, ~450 MiB): run with -docs.heavy")
			}
			need(e.t, "/usr/bin/time")
			e.start(c[0], nil)
			waitListen(e.t, e.port(5000))
			_, errOut, code := e.run(c[1], "", 60*time.Second)
			if code != 0 {
				e.t.Fatalf("exit %d: %s", code, errOut)
			}
			wantContains(e.t, "stderr", errOut, "10000 devices started", "peak RSS")
			e.t.Log(errOut)
		},
	},
	{
		name: "script-analog",
		cmds: []string{"wirecat simulate scripts/analog.lua --arg readings=3", "wirecat simulate scripts/analog.lua -o lines --frame line",
			"wirecat simulate scripts/analog.lua --arg encoding=binary --frame fixed:2 -o hex"},
		run: func(e *docEnv, c []string) {
			t := e.t
			// Readings a second apart by default: the first command takes 1.5 s.
			wantLines(t, "three readings", e.mustRun(c[0], ""), `^\d{1,4}$`, 3)
			sim := e.start(c[1], nil)
			sim.waitLines(3, 10*time.Second)
			sim.interrupt()
			sim.wait(10 * time.Second)
			wantLines(t, "one reading a line, no blank ones", sim.stdout.String(), `^\d{1,4}$`, 3)
			sim = e.start(c[2], nil)
			waitFor(t, 10*time.Second, "two 2-byte readings in hex", func() bool {
				return len(regexp.MustCompile(`(?m)^00000000  [0-9a-f]{2} [0-9a-f]{2}  `).FindAllString(sim.stdout.String(), -1)) >= 2
			})
			sim.interrupt()
		},
	},
	{
		name: "script-end-framer",
		cmds: []string{"wirecat listen 127.0.0.1:5000 --frame lua:scripts/end-framer.lua -o lines", `printf 'one\ntwoENDthreeEND' | wirecat connect 127.0.0.1:5000`},
		run: func(e *docEnv, c []string) {
			listen := e.start(c[0], nil)
			waitListen(e.t, e.port(5000))
			e.mustRun(c[1], "")
			if code := listen.wait(10 * time.Second); code != 0 || listen.stdout.String() != "one\ntwo\nthree\n" {
				e.t.Fatalf("listen: exit %d, stdout %q (want the messages \"one\\ntwo\" and \"three\", a line each)", code, listen.stdout)
			}
		},
	},
	{
		name: "script-esp8266",
		cmds: []string{"python3 -m http.server 8000 &", "wirecat simulate scripts/esp8266-get.lua --connect 127.0.0.1:8000 --arg path=/"},
		run: func(e *docEnv, c []string) {
			need(e.t, "python3")
			e.sub("http.server 8000", fmt.Sprintf("http.server %d --bind 127.0.0.1", e.port(8000)))
			e.start(c[0], nil)
			waitListen(e.t, e.port(8000))
			out := e.mustRun(c[1], "")
			if strings.Count(out, "HTTP/1.0 200 OK") != 1 || !strings.Contains(out, "Directory listing") {
				e.t.Fatalf("the page should print once: %q", out)
			}
		},
	},
	{
		name: "script-mqtt",
		cmds: []string{"mosquitto -p 1883 & mosquitto_sub -p 1883 -t 'wirecat/#' -v &", "wirecat simulate scripts/mqtt-publish.lua --connect 127.0.0.1:1883 --count 3"},
		run: func(e *docEnv, c []string) {
			need(e.t, "mosquitto", "mosquitto_sub")
			port := e.port(1883)
			e.sub("-p 1883", fmt.Sprintf("-p %d", port))
			broker, sub, _ := strings.Cut(c[0], " & ")
			e.start(broker, nil)
			waitListen(e.t, port)
			subscriber := e.start(sub, nil)
			time.Sleep(300 * time.Millisecond) // the subscription is in
			e.mustRun(c[1], "")
			waitFor(e.t, 10*time.Second, "15 readings (3 boards, 5 each) at the subscriber", func() bool {
				return strings.Count(subscriber.stdout.String(), "\n") >= 15
			})
			wantLines(e.t, "mosquitto_sub", subscriber.stdout.String(), `^wirecat/[123]/temp \S+$`, 15)
		},
	},
	{
		name: "lua-mqtt-broker",
		cmds: []string{"mosquitto -p 1883 &"},
		run: func(e *docEnv, c []string) {
			need(e.t, "mosquitto")
			e.sub("-p 1883", fmt.Sprintf("-p %d", e.port(1883)))
			e.start(c[0], nil)
			waitListen(e.t, e.port(1883)) // the examples themselves run in TestDocsLuaExamples
		},
	},
	{
		name: "script-mqtt-sensor",
		cmds: []string{"mosquitto -p 1883 & mosquitto_sub -p 1883 -t 'sensors/#' -v &",
			"wirecat simulate scripts/mqtt-sensor.lua --connect 127.0.0.1:1883 --count 3 --duration 5s",
			"mosquitto_pub -p 1883 -t sensors/2/cmd -m 'interval 0.2'"},
		run: func(e *docEnv, c []string) {
			need(e.t, "mosquitto", "mosquitto_sub", "mosquitto_pub")
			port := e.port(1883)
			e.sub("-p 1883", fmt.Sprintf("-p %d", port))
			broker, sub, _ := strings.Cut(c[0], " & ")
			e.start(broker, nil)
			waitListen(e.t, port)
			subscriber := e.start(sub, nil)
			time.Sleep(300 * time.Millisecond) // the subscription is in
			sim := e.start(c[1], nil)
			waitFor(e.t, 5*time.Second, "three sensors online", func() bool {
				return strings.Count(subscriber.stdout.String(), "/status online") == 3
			})
			e.mustRun(c[2], "")
			sim.wait(10 * time.Second)
			out := subscriber.stdout.String()
			// sensor 2 reads every 0.2 s from then on, the others every second
			if n1, n2 := strings.Count(out, "sensors/1/temp "), strings.Count(out, "sensors/2/temp "); n2 < 2*n1 || n1 < 3 {
				e.t.Fatalf("sensor 1 sent %d readings, sensor 2 %d: the command did not take\n%s", n1, n2, out)
			}
			waitFor(e.t, 5*time.Second, "the wills (stopped at --duration)", func() bool {
				return strings.Count(subscriber.stdout.String(), "/status offline") == 3
			})
		},
	},
	{
		name: "script-particle-web",
		cmds: []string{"wirecat simulate scripts/particle-web.lua --listen 127.0.0.1:8080", "curl http://127.0.0.1:8080/ ; curl http://127.0.0.1:8080/status"},
		run: func(e *docEnv, c []string) {
			need(e.t, "curl")
			sim := e.start(c[0], nil)
			waitListen(e.t, e.port(8080))
			wantContains(e.t, "curl", e.mustRun(c[1], ""), "<h1>Particle</h1>", "</html>")
			sim.interrupt()
		},
	},
	{
		name: "script-thermo",
		cmds: []string{"wirecat simulate scripts/thermo.lua --count 100 --connect 127.0.0.1:5000",
			"wirecat simulate scripts/thermo.lua --arg interval=0.1 --arg readings=5", "wirecat simulate scripts/thermo.lua --frame line"},
		run: func(e *docEnv, c []string) {
			t := e.t
			var mu sync.Mutex
			readings := 0
			e.server(e.port(5000), func(c net.Conn) {
				b := make([]byte, 64)
				for {
					n, err := c.Read(b)
					mu.Lock()
					readings += strings.Count(string(b[:n]), ",")
					mu.Unlock()
					if err != nil {
						return
					}
				}
			})
			sim := e.start(c[0], nil)
			waitFor(t, 10*time.Second, "a reading from each of 100 boards", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return readings >= 100
			})
			sim.interrupt()
			sim.wait(10 * time.Second)
			wantLines(t, "five readings", e.mustRun(c[1], ""), reading, 5)
			sim = e.start(c[2], nil)
			sim.waitLines(2, 10*time.Second)
			sim.interrupt()
			sim.wait(10 * time.Second)
			wantLines(t, "readings a line", sim.stdout.String(), reading, 2)
		},
	},
	{
		name: "import",
		cmds: []string{"tshark -i lo -f 'tcp port 1883' -w board.pcapng",
			"wirecat import board.pcapng board.jsonl --port 1883",
			"wirecat replay board.jsonl --as client --check",
			"wirecat import lab.pcap dev.jsonl --host 10.0.0.7 --port 5000",
			"wirecat replay dev.jsonl --as server --listen 127.0.0.1:5000"},
		run: func(e *docEnv, c []string) {
			need(e.t, "tshark", "mosquitto", "mosquitto_pub")
			// A real broker and client, captured by tshark on loopback.
			port := e.port(1883)
			e.sub("tcp port 1883", fmt.Sprintf("tcp port %d", port))
			e.sub("--port 1883", fmt.Sprintf("--port %d", port))
			e.write("m.conf", fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n", port), 0o644)
			broker := e.start("mosquitto -c m.conf", nil)
			waitListen(e.t, port)
			shark := e.start(c[0], nil)
			shark.waitStderr("Capturing on", 10*time.Second)
			time.Sleep(200 * time.Millisecond)
			e.mustRun(fmt.Sprintf("mosquitto_pub -h 127.0.0.1 -p %d -q 1 -t board/led -m on", port), "")
			time.Sleep(300 * time.Millisecond)
			shark.interrupt()
			shark.wait(10 * time.Second)
			e.mustRun(c[1], "")
			e.mustRun(c[2], "") // the broker answers the recorded client as it did
			broker.interrupt()
			// A lab capture with two devices: only 10.0.0.7's port 5000 is kept.
			e.write("lab.jsonl", `{"wirecat":"session","version":1,"start":"2026-03-01T10:00:00Z"}
{"t":0.1,"ev":"open","conn":1,"transport":"tcp","role":"relay","local":"10.0.0.7:5000","remote":"10.0.0.2:40000","client":"10.0.0.2:40000","server":"10.0.0.7:5000"}
{"t":0.2,"ev":"data","conn":1,"from":"client","text":"temp?\n"}
{"t":0.3,"ev":"data","conn":1,"from":"server","text":"temp 21.5\n"}
{"t":0.4,"ev":"open","conn":2,"transport":"tcp","role":"relay","local":"10.0.0.8:5000","remote":"10.0.0.2:40001","client":"10.0.0.2:40001","server":"10.0.0.8:5000"}
{"t":0.5,"ev":"data","conn":2,"from":"client","text":"other\n"}
`, 0o644)
			e.mustRun("wirecat show lab.jsonl --pcap lab.pcap", "")
			e.mustRun(c[3], "")
			shown := e.mustRun("wirecat show dev.jsonl", "")
			wantContains(e.t, "the imported device", shown, "temp 21.5")
			if strings.Contains(shown, "other") {
				e.t.Fatalf("--host kept 10.0.0.8's conversation:\n%s", shown)
			}
			mock := e.start(c[4], nil)
			waitListen(e.t, e.port(5000))
			m := e.dial(e.port(5000))
			io.WriteString(m, "temp?\n")
			if got := readLine(e.t, bufio.NewReader(m)); got != "temp 21.5" {
				e.t.Fatalf("the mock answered %q", got)
			}
			m.Close()
			mock.interrupt()
			mock.wait(10 * time.Second)
		},
	},
	{
		name: "relay-faults-move",
		cmds: []string{"wirecat relay :7000 127.0.0.1:7001 --slice down:1-8 --corrupt up:1%",
			"wirecat relay :7000 127.0.0.1:7001 --reset 64KiB --down 5s@30s --at '60s --delay 300ms --drop 5%'"},
		run: func(e *docEnv, c []string) {
			e.server(e.port(7001), func(c net.Conn) { io.Copy(c, c) })
			relay := e.start(c[0], nil)
			waitListen(e.t, e.port(7000))
			conn := e.dial(e.port(7000))
			msg := []byte(strings.Repeat("sensor reading 21.5\n", 50))
			conn.Write(msg)
			back := make([]byte, len(msg))
			if _, err := io.ReadFull(conn, back); err != nil {
				e.t.Fatalf("through --slice/--corrupt: %v", err)
			}
			flips := 0
			for i := range msg {
				for x := msg[i] ^ back[i]; x != 0; x &= x - 1 {
					flips++
				}
			}
			if flips > 1 { // one message, one bit at most
				e.t.Fatalf("%d bits differ", flips)
			}
			conn.Close()
			relay.interrupt()
			relay.wait(10 * time.Second)
			// --reset 64KiB: 100 KiB up ends in a reset; before its outage
			// at 30 s the relay serves.
			relay = e.start(c[1], nil)
			waitListen(e.t, e.port(7000))
			conn = e.dial(e.port(7000))
			go conn.Write(make([]byte, 100<<10))
			n, err := io.Copy(io.Discard, conn)
			if !errors.Is(err, syscall.ECONNRESET) || n > 64<<10 {
				e.t.Fatalf("after %d bytes back: %v, want a reset after 64 KiB", n, err)
			}
			relay.interrupt()
			relay.wait(10 * time.Second)
		},
	},
	{
		name: "relay-control",
		cmds: []string{"wirecat relay :7000 127.0.0.1:7001 --control 127.0.0.1:7070",
			"wirecat fault 127.0.0.1:7070", "wirecat fault 127.0.0.1:7070 --delay up:200ms --drop 5%",
			"wirecat fault 127.0.0.1:7070 --delay up:200ms", "wirecat fault 127.0.0.1:7070 --conns",
			"curl -s 127.0.0.1:7070/conns", "wirecat fault 127.0.0.1:7070 --clear"},
		run: func(e *docEnv, c []string) {
			e.server(e.port(7001), func(c net.Conn) { io.Copy(c, c) })
			relay := e.start(c[0], nil)
			waitListen(e.t, e.port(7000))
			waitListen(e.t, e.port(7070))
			if got := e.mustRun(c[1], ""); got != "no faults\n" {
				e.t.Fatalf("fault: %q", got)
			}
			if got := e.mustRun(c[2], ""); got != "--delay up:200ms --drop 0.05\n" {
				e.t.Fatalf("fault --delay --drop: %q", got)
			}
			if got := e.mustRun(c[3], ""); got != "--delay up:200ms\n" {
				e.t.Fatalf("fault --delay: %q", got)
			}
			conn := e.dial(e.port(7000))
			rd := bufio.NewReader(conn)
			t0 := time.Now()
			io.WriteString(conn, "ping\n")
			if readLine(e.t, rd) != "ping" || time.Since(t0) < 190*time.Millisecond {
				e.t.Fatalf("round trip %v with --delay up:200ms set through the API", time.Since(t0))
			}
			wantContains(e.t, "fault --conns", e.mustRun(c[4], ""), "1\t127.0.0.1:", "bytes up")
			wantContains(e.t, "curl", e.mustRun(c[5], ""), `{"conns":[{"id":1,`)
			if got := e.mustRun(c[6], ""); got != "no faults\n" {
				e.t.Fatalf("fault --clear: %q", got)
			}
			t0 = time.Now()
			io.WriteString(conn, "pong\n")
			if readLine(e.t, rd) != "pong" || time.Since(t0) > 150*time.Millisecond {
				e.t.Fatalf("round trip %v after --clear", time.Since(t0))
			}
			conn.Close()
			relay.interrupt()
			relay.wait(10 * time.Second)
		},
	},
	{
		name: "wireshark",
		cmds: []string{"wirecat show board.jsonl --pcap board.pcapng && wireshark board.pcapng"},
		skip: "opens Wireshark's window; the capture itself is checked by the replay and readme-relay cases (tshark)",
	},
}

// TestDocsLuaExamples runs each docs/lua.md example with the command on its
// first line, next to the echo server the doc starts, and compares stdout
// with the text block after it.
func TestDocsLuaExamples(t *testing.T) {
	exs, err := luatest.Examples(filepath.Join("..", "..", "docs", "lua.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) < 10 {
		t.Fatalf("found only %d examples", len(exs))
	}
	e := newDocEnv(t)
	echo := e.start("wirecat listen -k 127.0.0.1:7000 --exec cat &", nil)
	waitListen(t, e.port(7000))
	_ = echo
	for _, ex := range exs {
		first, _, _ := strings.Cut(ex.Code, "\n")
		cmd, ok := strings.CutPrefix(first, "-- ")
		if !ok || !strings.HasPrefix(cmd, "wirecat simulate example.lua") {
			t.Errorf("docs/lua.md:%d: the example's first line should be the command that runs it (-- wirecat simulate example.lua ...), not %q", ex.Line, first)
			continue
		}
		t.Run(fmt.Sprintf("line%d", ex.Line), func(t *testing.T) {
			if strings.Contains(cmd, "127.0.0.1:1883") { // an mqtt example: the doc's mosquitto
				need(t, "mosquitto")
				mqttBroker.Do(func() {
					e.sub("-p 1883", fmt.Sprintf("-p %d", e.port(1883)))
					e.start("mosquitto -p 1883 &", nil)
					waitListen(t, e.port(1883))
				})
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "example.lua"), []byte(ex.Code), 0o644); err != nil {
				t.Fatal(err)
			}
			run := exec.Command("sh", "-c", e.expand(cmd))
			run.Dir, run.Env = dir, e.env
			var out, errOut bytes.Buffer
			run.Stdout, run.Stderr = &out, &errOut
			if err := runWithin(run, 20*time.Second); err != nil {
				t.Fatalf("$ %s: %v\nstdout: %s\nstderr: %s", cmd, err, out.String(), errOut.String())
			}
			if out.String() != ex.Output {
				t.Errorf("$ %s printed:\n%s\nthe doc says:\n%s\nstderr: %s", cmd, out.String(), ex.Output, errOut.String())
			}
		})
	}
}

// mqttBroker starts the mqtt examples' mosquitto once.
var mqttBroker sync.Once

// runWithin runs cmd, killing it after d.
func runWithin(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("still running after %v", d)
	}
}
