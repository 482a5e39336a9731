package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// capture runs dumpcap on loopback for traffic on port while traffic runs,
// and returns the pcapng file.
func captureLoopback(t *testing.T, filter string, traffic func()) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cap.pcapng")
	d := start(t, "dumpcap", "-q", "-i", "lo", "-f", filter, "-w", out)
	waitFor(t, 10*time.Second, "dumpcap to start", func() bool {
		st, err := os.Stat(out)
		return err == nil && st.Size() > 0 // the section header is written once capturing
	})
	time.Sleep(200 * time.Millisecond)
	traffic()
	time.Sleep(300 * time.Millisecond) // the last ACKs
	d.cmd.Process.Signal(syscall.SIGINT)
	d.wait(10 * time.Second)
	return out
}

// A real client's conversation with a real MQTT broker, captured with
// dumpcap, imports as a session that replays with --check against the
// broker: the broker answers the recorded CONNECT and PUBLISH as it did.
// Against another server, the check fails with exit 3.
func TestImportMosquittoReplayCheck(t *testing.T) {
	need(t, "dumpcap", "mosquitto", "mosquitto_pub")
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "m.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n", port)), 0o644)
	start(t, "mosquitto", "-c", conf)
	waitListen(t, port)
	pcap := captureLoopback(t, fmt.Sprintf("tcp port %d", port), func() {
		pub := start(t, "mosquitto_pub", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-q", "1", "-t", "board/led", "-m", "on", "-i", "board-7")
		if code := pub.wait(10 * time.Second); code != 0 {
			t.Fatalf("mosquitto_pub exit %d", code)
		}
	})
	sess := filepath.Join(t.TempDir(), "board.jsonl")
	_, stderr, code := runWirecat(t, "", 20*time.Second, "import", pcap, sess, "--port", fmt.Sprint(port), "-v")
	if code != 0 {
		t.Fatalf("import exit %d: %s", code, stderr)
	}
	shown, _, _ := runWirecat(t, "", 10*time.Second, "show", sess, "-o", "json")
	publish := base64.StdEncoding.EncodeToString([]byte("\x32\x0f\x00\x09board/led\x00\x01on")) // QoS 1, id 1
	if !strings.Contains(shown, `"from":"client","len":17,"b64":"`+publish+`"`) {
		t.Fatalf("the PUBLISH is not in the session:\n%s", shown)
	}
	_, stderr, code = runWirecat(t, "", 20*time.Second, "replay", sess, "--as", "client", "--check", "--speed", "max", "--timeout", "3s")
	if code != 0 {
		t.Fatalf("replay --check against the broker: exit %d: %s", code, stderr)
	}
	// The same check against a server that answers differently fails.
	other := freePort(t)
	start(t, "python3", "-c", fmt.Sprintf(`
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", %d)); s.listen(4)
while True:
    c, _ = s.accept(); c.recv(100); c.sendall(b"\x20\x02\x00\x05"); c.close()
`, other))
	waitListen(t, other)
	_, stderr, code = runWirecat(t, "", 20*time.Second, "replay", sess, "--as", "client", "--check", "--speed", "max",
		"--timeout", "2s", "--to", fmt.Sprintf("127.0.0.1:%d", other))
	if code != 3 {
		t.Fatalf("replay --check against another server: exit %d, want 3: %s", code, stderr)
	}
}

// A UDP conversation captured from real peers (python3) becomes a mock:
// replay --as server answers a new client as the recorded server did.
func TestImportUDPMock(t *testing.T) {
	need(t, "dumpcap")
	port := freeUDPPort(t)
	srv := start(t, "python3", "-c", fmt.Sprintf(`
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", %d))
while True:
    d, a = s.recvfrom(2000); s.sendto(b"temp=21.5 for " + d, a)
`, port))
	waitUDP(t, port)
	client := fmt.Sprintf(`
import socket, sys
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(3)
c.sendto(b"sensor-1", ("127.0.0.1", %d)); print(c.recvfrom(2000)[0].decode())
`, port)
	pcap := captureLoopback(t, fmt.Sprintf("udp port %d", port), func() {
		p := start(t, "python3", "-c", client)
		if code := p.wait(10 * time.Second); code != 0 {
			t.Fatalf("udp client exit %d", code)
		}
	})
	srv.cmd.Process.Kill()
	<-srv.done
	sess := filepath.Join(t.TempDir(), "udp.jsonl")
	if _, stderr, code := runWirecat(t, "", 20*time.Second, "import", pcap, sess); code != 0 {
		t.Fatalf("import exit %d: %s", code, stderr)
	}
	mock := start(t, "wirecat", "replay", sess, "--as", "server", "--once")
	waitUDP(t, port)
	p := start(t, "python3", "-c", client)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("client of the mock: exit %d", code)
	}
	if got := strings.TrimSpace(p.stdout.String()); got != "temp=21.5 for sensor-1" {
		t.Fatalf("mock answered %q", got)
	}
	mock.wait(10 * time.Second)
}

// Bad input: one clear line each.
func TestImportBadInput(t *testing.T) {
	dir := t.TempDir()
	notcap := filepath.Join(dir, "x.jsonl")
	os.WriteFile(notcap, []byte(`{"wirecat":"session","version":1}`+"\n"), 0o644)
	_, stderr, code := runWirecat(t, "", 10*time.Second, "import", notcap, filepath.Join(dir, "out.jsonl"))
	if code != 1 || !strings.Contains(stderr, "not a pcap or pcapng capture") || !strings.Contains(stderr, "hint:") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, stderr, code = runWirecat(t, "", 10*time.Second, "import", filepath.Join(dir, "missing.pcap"), filepath.Join(dir, "out.jsonl"))
	if code != 2 {
		t.Fatalf("missing file: exit %d: %s", code, stderr)
	}
	_, stderr, code = runWirecat(t, "", 10*time.Second, "import", notcap, filepath.Join(dir, "out.jsonl"), "--host", "nope")
	if code != 2 || !strings.Contains(stderr, `--host "nope"`) {
		t.Fatalf("bad --host: exit %d: %s", code, stderr)
	}
}

// A relay's recording exported with show --pcap imports back (from stdin,
// with the recording's framing) as the same conversation: the same
// messages from the same sides at the same times.
func TestImportRoundTrip(t *testing.T) {
	target := freePort(t)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", target))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						return
					}
					fmt.Fprintf(c, "ok %s", l)
				}
			}()
		}
	}()
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec.jsonl")
	port := freePort(t)
	relay := start(t, "wirecat", "relay", fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", target), "--frame", "line", "--record", rec)
	waitListen(t, port)
	for range 2 {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		for _, m := range []string{"temp 21.5\n", "\x00\x01binary\xff\n"} {
			io.WriteString(c, m)
			if l, err := br.ReadString('\n'); err != nil || l != "ok "+m {
				t.Fatalf("%q %v", l, err)
			}
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	relay.cmd.Process.Signal(syscall.SIGINT)
	relay.wait(10 * time.Second)
	pcap := filepath.Join(dir, "rec.pcapng")
	if _, stderr, code := runWirecat(t, "", 10*time.Second, "show", rec, "--pcap", pcap); code != 0 {
		t.Fatalf("show --pcap: %s", stderr)
	}
	b, _ := os.ReadFile(pcap)
	back := filepath.Join(dir, "back.jsonl")
	if _, stderr, code := runWirecat(t, string(b), 10*time.Second, "import", "-", back, "--frame", "line"); code != 0 {
		t.Fatalf("import -: %s", stderr)
	}
	// Without SESSION the session goes to stdout, the same as into a file.
	toStdout, stderr, code := runWirecat(t, string(b), 10*time.Second, "import", "-", "--frame", "line")
	if code != 0 {
		t.Fatalf("import - (to stdout): %s", stderr)
	}
	piped := filepath.Join(dir, "piped.jsonl")
	os.WriteFile(piped, []byte(toStdout), 0o644)
	// The events that matter, with absolute times: kind, side, data, time.
	view := func(path string) []string {
		out, _, code := runWirecat(t, "", 10*time.Second, "show", path, "-o", "json")
		if code != 0 {
			t.Fatalf("show %s", path)
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var e map[string]any
			json.Unmarshal([]byte(l), &e)
			if e["event"] == "data" || e["event"] == "open" {
				lines = append(lines, fmt.Sprintf("%v %v %v %v %v %v", e["event"], e["conn"], e["from"], e["text"], e["b64"], e["time"]))
			}
		}
		return lines
	}
	a, z := view(rec), view(back)
	if strings.Join(a, "\n") != strings.Join(z, "\n") {
		t.Fatalf("recorded:\n%s\nimported back:\n%s", strings.Join(a, "\n"), strings.Join(z, "\n"))
	}
	if p := view(piped); strings.Join(p, "\n") != strings.Join(z, "\n") {
		t.Fatalf("imported to a file:\n%s\nimported to stdout:\n%s", strings.Join(z, "\n"), strings.Join(p, "\n"))
	}
	if len(a) != 10 {
		t.Fatalf("%d events, want 2 opens and 8 messages:\n%s", len(a), strings.Join(a, "\n"))
	}
}
