package sim

// End-to-end: every script in scripts/ against a real peer.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
	"github.com/wirecat-dev/wirecat/script"
)

func needTool(t *testing.T, name string) string { t.Helper(); return e2e.NeedPath(t, name) }

func freePort(t *testing.T) int { return e2e.FreePort(t) }

// waitPort waits until something listens on port.
func waitPort(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %d", port)
}

// start runs a peer command in the background, killed at the end of the test.
func start(t *testing.T, name string, args ...string) *syncBuf {
	t.Helper()
	cmd := exec.Command(needTool(t, name), args...)
	out := &syncBuf{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return out
}

func simulate(t *testing.T, path string, cfg Config) (Summary, string, string) {
	t.Helper()
	cfg.Program = load(t, path)
	var stdout, stderr syncBuf
	cfg.Stdout, cfg.Stderr = &stdout, &stderr
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Second
	}
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed > 0 {
		t.Fatalf("device failed: %v\nstderr: %s", sum.Errors, stderr.String())
	}
	return sum, stdout.String(), stderr.String()
}

func TestLedBoardWithPython(t *testing.T) {
	port := freePort(t)
	server := `
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); s.settimeout(10)
c, _ = s.accept(); c.settimeout(10); f = c.makefile("rwb")
def line(): return f.readline().decode().strip()
print(line())
for cmd in ["LED ON", "LED OFF", "BLINK"]:
    f.write((cmd + "\n").encode()); f.flush(); print(line())
c.close()
`
	out := start(t, "python3", "-c", server, strconv.Itoa(port))
	waitListen(t, port)
	sum, _, _ := simulate(t, "../../scripts/led-board.lua", Config{Connect: fmt.Sprintf("127.0.0.1:%d", port)})
	time.Sleep(100 * time.Millisecond)
	want := "STATE OFF\nSTATE ON\nSTATE OFF\nERROR unknown command: BLINK\n"
	if got := out.String(); !strings.Contains(got, want) {
		t.Errorf("python saw %q, want %q", got, want)
	}
	if sum.MsgsRecv != 3 || sum.MsgsSent != 4 {
		t.Errorf("summary %+v", sum)
	}
}

// socatSink listens with socat and returns what it received when the test's
// devices are done.
func socatSink(t *testing.T) (addr string, got func() []byte) {
	port := freePort(t)
	file := filepath.Join(t.TempDir(), "got")
	start(t, "socat", "-u", fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr", port), "CREATE:"+file)
	waitListen(t, port)
	return fmt.Sprintf("127.0.0.1:%d", port), func() []byte {
		deadline := time.Now().Add(3 * time.Second)
		for {
			b, _ := os.ReadFile(file)
			if len(b) > 0 || time.Now().After(deadline) {
				time.Sleep(50 * time.Millisecond)
				b, _ = os.ReadFile(file)
				return b
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// waitListen waits for a one-peer server to listen, without connecting to it.
func waitListen(t *testing.T, port int) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile("/proc/net/tcp")
		if bytes.Contains(b, []byte(fmt.Sprintf(":%04X 00000000:0000 0A", port))) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("socat does not listen on %d", port)
}

func TestAnalogCharsAndBinaryWithSocat(t *testing.T) {
	for _, enc := range []string{"chars", "binary"} {
		t.Run(enc, func(t *testing.T) {
			addr, got := socatSink(t)
			simulate(t, "../../scripts/analog.lua", Config{Connect: addr,
				Args: map[string]string{"encoding": enc, "interval": "0.01", "readings": "5"}})
			b := got()
			if enc == "binary" {
				if len(b) != 10 {
					t.Fatalf("got %d bytes %x, want 5 uint16", len(b), b)
				}
				for i := 0; i < 10; i += 2 {
					if v := binary.BigEndian.Uint16(b[i:]); v > 4095 {
						t.Errorf("reading %d out of range", v)
					}
				}
				return
			}
			ls := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			if len(ls) != 5 {
				t.Fatalf("got %q", b)
			}
			for _, l := range ls {
				if v, err := strconv.Atoi(l); err != nil || v < 0 || v > 4095 {
					t.Errorf("reading %q", l)
				}
			}
		})
	}
}

func TestEndFramerWithSocat(t *testing.T) {
	// a device using the framer file reads what socat sends
	port := freePort(t)
	start(t, "socat", fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr", port), "SYSTEM:printf oneENDtwoEND; sleep 0.2; printf thr; sleep 0.2; printf eeEND; sleep 0.3")
	waitListen(t, port)
	p, err := script.Compile("dev.lua", []byte(`
		local c = assert(net.connect(TARGET, {frame = "lua:../../scripts/end-framer.lua"}))
		while true do
			local m, err = c:recv(3)
			if not m then print(err) break end
			print("[" .. m .. "]")
		end`))
	if err != nil {
		t.Fatal(err)
	}
	var stdout syncBuf
	sum, err := Run(context.Background(), Config{Program: p, Connect: fmt.Sprintf("127.0.0.1:%d", port), Stdout: &stdout, Duration: 5 * time.Second})
	if err != nil || sum.Failed > 0 {
		t.Fatal(err, sum.Errors)
	}
	if want := "[one]\n[two]\n[three]\nclosed\n"; stdout.String() != want {
		t.Errorf("got %q, want %q", stdout.String(), want)
	}
}

func TestParticleWebWithCurl(t *testing.T) {
	curl := needTool(t, "curl")
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan Summary)
	var stderr syncBuf
	go func() {
		sum, _ := Run(ctx, Config{Program: load(t, "../../scripts/particle-web.lua"), Listen: fmt.Sprintf("127.0.0.1:%d", port), Stderr: &stderr})
		done <- sum
	}()
	waitPort(t, port)
	get := func(path string) string {
		out, err := exec.Command(curl, "-sS", "-m", "5", "-i", fmt.Sprintf("http://127.0.0.1:%d%s", port, path)).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v %s", path, err, out)
		}
		return strings.ReplaceAll(string(out), "\r\n", "\n")
	}
	if r := get("/"); !strings.HasPrefix(r, "HTTP/1.1 200 OK") || !strings.Contains(r, "<h1>Particle</h1>") {
		t.Errorf("/: %q", r)
	}
	if r := get("/about"); !strings.Contains(r, "<h1>About</h1>") {
		t.Errorf("/about: %q", r)
	}
	s1, s2 := get("/status"), get("/status")
	if !strings.Contains(s1, "device 1, up") || s1 == s2 {
		t.Errorf("/status not dynamic: %q then %q", s1, s2)
	}
	if r := get("/nope"); !strings.HasPrefix(r, "HTTP/1.1 404") {
		t.Errorf("/nope: %q", r)
	}
	cancel()
	sum := <-done
	if sum.Failed != 0 || sum.Conns < 5 {
		t.Errorf("summary %+v", sum)
	}
	if !strings.Contains(stderr.String(), "device 1: serving on http://127.0.0.1:") {
		t.Errorf("stderr %q", stderr.String())
	}
}

func TestESP8266GetWithPythonHTTPServer(t *testing.T) {
	dir := t.TempDir()
	page := "<html><body>Hello, ESP8266!</body></html>\n"
	os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644)
	port := freePort(t)
	start(t, "python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, strconv.Itoa(port))
	waitPort(t, port)
	_, out, stderr := simulate(t, "../../scripts/esp8266-get.lua", Config{Connect: fmt.Sprintf("127.0.0.1:%d", port),
		Args: map[string]string{"path": "/index.html"}})
	if !strings.HasPrefix(out, "HTTP/1.0 200 OK") || !strings.HasSuffix(out, page+"\n") {
		t.Errorf("printed %q (stderr %q)", out, stderr)
	}
}

func TestMQTTPublishWithMosquitto(t *testing.T) {
	needTool(t, "mosquitto_sub")
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n", port)), 0o644)
	start(t, "mosquitto", "-c", conf)
	waitPort(t, port)
	sub := exec.Command("mosquitto_sub", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-t", "wirecat/#", "-v", "-C", "6", "-W", "10")
	var got bytes.Buffer
	sub.Stdout = &got
	sub.Stderr = io.Discard
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	defer sub.Process.Kill()
	time.Sleep(300 * time.Millisecond) // let the subscription land
	sum, _, _ := simulate(t, "../../scripts/mqtt-publish.lua", Config{Connect: fmt.Sprintf("127.0.0.1:%d", port), Count: 2,
		Args: map[string]string{"count": "3", "interval": "0.05"}})
	if err := sub.Wait(); err != nil {
		t.Fatalf("mosquitto_sub: %v, got %q", err, got.String())
	}
	ls := strings.Split(strings.TrimSpace(got.String()), "\n")
	if len(ls) != 6 {
		t.Fatalf("got %q", got.String())
	}
	for _, l := range ls {
		topic, v, _ := strings.Cut(l, " ")
		if topic != "wirecat/1/temp" && topic != "wirecat/2/temp" {
			t.Errorf("topic %q", topic)
		}
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			t.Errorf("payload %q", v)
		}
	}
	if sum.MsgsSent != 2*5 || sum.MsgsRecv != 2 {
		t.Errorf("summary %+v", sum)
	}
}
