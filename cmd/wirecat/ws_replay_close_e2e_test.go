package main

// Issue 11: `wirecat replay` of a WebSocket session closes as recorded.
// The side that sent the close frame sends the recorded code and reason
// (as client and as server), and with --check a peer closing with another
// code than the recorded one is a difference (exit 3). The peers are Python
// websockets programs that print the close frames they got.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The replay --help example of a WebSocket (docs/cli.md), run as printed
// against a Python websockets server that prints the close it received.
func init() {
	docCases = append(docCases, docCase{
		name: "replay-ws-close",
		cmds: []string{"wirecat replay ws.jsonl --to ws://127.0.0.1:8080/mqtt --check"},
		run: func(e *docEnv, c []string) {
			t := e.t
			needPy(t, "websockets")
			srv := start(t, debPython, pyScript(t, pyWSCloser), fmt.Sprint(e.port(8080)))
			srv.waitOutput("ready", 10*time.Second)
			b, err := os.ReadFile(wsRecording(t, "client", 4001, "done here"))
			if err != nil {
				t.Fatal(err)
			}
			e.write("ws.jsonl", string(b), 0o644)
			if out, errOut, code := e.run(c[0], "", 15*time.Second); code != 0 {
				t.Fatalf("exit %d: %s%s", code, out, errOut)
			}
			srv.waitOutput("rcvd 4001 done here", 5*time.Second)
		},
	})
}

// wsRecording writes a recording of one WebSocket connection: the client
// says hi, the server answers ack, then by closes with code and reason.
func wsRecording(t *testing.T, by string, code int, reason string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), fmt.Sprintf("ws-%s-%d.jsonl", by, code))
	rec := `{"wirecat":"session","version":2,"command":"connect ws://127.0.0.1:1/","frame":"raw","start":"2026-11-29T10:00:00Z"}
{"t":0,"ev":"open","conn":1,"transport":"ws","role":"client","local":"127.0.0.1:40000","remote":"127.0.0.1:1","client":"127.0.0.1:40000","server":"127.0.0.1:1"}
{"t":0.01,"ev":"data","conn":1,"from":"client","text":"hi"}
{"t":0.02,"ev":"data","conn":1,"from":"server","text":"ack"}
` + fmt.Sprintf(`{"t":0.03,"ev":"close","conn":1,"by":%q,"code":%d,"reason":%q}`, by, code, reason) + "\n"
	if err := os.WriteFile(file, []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// A Python websockets client: sends hi, reads ack, then closes with the
// code and reason given (or waits for the server's close), and prints the
// close frame it received.
const pyWSReplayClient = `
import asyncio, sys, websockets
async def main():
    ws = await websockets.connect(sys.argv[1])
    await ws.send(b"hi")
    print("got", (await ws.recv()).decode(), flush=True)
    if len(sys.argv) > 2:
        await ws.close(int(sys.argv[2]), sys.argv[3])
    else:
        await ws.wait_closed()
    r = ws.close_rcvd
    print("rcvd", r and r.code, r and r.reason, flush=True)
asyncio.run(main())
`

// Replaying the client that closed sends the recorded close frame.
func TestWSReplayClientCloses(t *testing.T) {
	needPy(t, "websockets")
	port := freePort(t)
	srv := start(t, debPython, pyScript(t, pyWSCloser), fmt.Sprint(port))
	srv.waitOutput("ready", 10*time.Second)
	rec := wsRecording(t, "client", 4001, "done here")
	out, errOut, code := runWirecat(t, "", 15*time.Second, "replay", rec, "--as", "client",
		"--to", fmt.Sprintf("ws://127.0.0.1:%d/wait", port), "--check")
	if code != 0 {
		t.Fatalf("replay exit %d: %s%s", code, out, errOut)
	}
	srv.waitOutput("rcvd ", 5*time.Second)
	if got := srv.stdout.String(); !strings.Contains(got, "rcvd 4001 done here sent 4001 done here\n") {
		t.Errorf("the server got %q, want the recorded close 4001 \"done here\"", got)
	}
}

// Replaying the server that closed sends the recorded close frame.
func TestWSReplayServerCloses(t *testing.T) {
	needPy(t, "websockets")
	port := freePort(t)
	rec := wsRecording(t, "server", 4002, "bye")
	l := start(t, "wirecat", "replay", rec, "--as", "server", "--once",
		"--listen", fmt.Sprintf("ws://127.0.0.1:%d/x", port))
	waitListen(t, port)
	cl := start(t, debPython, pyScript(t, pyWSReplayClient), fmt.Sprintf("ws://127.0.0.1:%d/x", port))
	if code := cl.wait(10 * time.Second); code != 0 {
		t.Fatalf("client exit %d: %s", code, cl.stderr)
	}
	if got := cl.stdout.String(); got != "got ack\nrcvd 4002 bye\n" {
		t.Errorf("the client printed %q, want the recorded close 4002 \"bye\"", got)
	}
	if code := l.wait(10 * time.Second); code != 0 {
		t.Errorf("replay exit %d: %s", code, l.stderr)
	}
}

// With --check, the peer's close code is compared with the recorded one
// (when the recording has one): another code is a difference, exit 3.
func TestWSReplayCheckCloseCode(t *testing.T) {
	needPy(t, "websockets")
	port := freePort(t)
	srv := start(t, debPython, pyScript(t, pyWSCloser), fmt.Sprint(port))
	srv.waitOutput("ready", 10*time.Second)
	rec := wsRecording(t, "server", 4000, "bye")
	to := func(path string) string { return fmt.Sprintf("ws://127.0.0.1:%d%s", port, path) }

	// The server closes as recorded: no difference, though 4000 is an error
	// close for a live connection.
	out, errOut, code := runWirecat(t, "", 15*time.Second, "replay", rec, "--as", "client", "--to", to("/close/4000/bye"), "--check")
	if code != 0 {
		t.Fatalf("same close: exit %d: %s%s", code, out, errOut)
	}
	// The reason is free text: not compared.
	out, errOut, code = runWirecat(t, "", 15*time.Second, "replay", rec, "--as", "client", "--to", to("/close/4000/later"), "--check")
	if code != 0 {
		t.Fatalf("same code, other reason: exit %d: %s%s", code, out, errOut)
	}
	// Another code: a difference, shown as such.
	_, errOut, code = runWirecat(t, "", 15*time.Second, "replay", rec, "--as", "client", "--to", to("/close/1000/done"), "--check")
	if code != 3 {
		t.Fatalf("other close: exit %d, want 3: %s", code, errOut)
	}
	for _, want := range []string{
		"wirecat: replay: connection 1, the close from the server differs from the recording\n",
		"expected: close code 4000 (application) \"bye\"\n",
		"got: close code 1000 (normal) \"done\"\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the difference does not say %q:\n%s", want, errOut)
		}
	}
	// Without --check the replay does not compare.
	_, errOut, code = runWirecat(t, "", 15*time.Second, "replay", rec, "--as", "client", "--to", to("/close/1000/done"))
	if code != 0 {
		t.Errorf("other close without --check: exit %d: %s", code, errOut)
	}

	// As server: the client's close code is checked the same way.
	rec = wsRecording(t, "client", 4000, "bye")
	for _, c := range []struct {
		code string
		exit int
	}{{"4000", 0}, {"4003", 3}} {
		port := freePort(t)
		l := start(t, "wirecat", "replay", rec, "--as", "server", "--once", "--check",
			"--listen", fmt.Sprintf("ws://127.0.0.1:%d/x", port))
		waitListen(t, port)
		cl := start(t, debPython, pyScript(t, pyWSReplayClient), fmt.Sprintf("ws://127.0.0.1:%d/x", port), c.code, "bye")
		if code := cl.wait(10 * time.Second); code != 0 {
			t.Fatalf("client exit %d: %s", code, cl.stderr)
		}
		if code := l.wait(10 * time.Second); code != c.exit {
			t.Errorf("client closing with %s: replay exit %d, want %d: %s", c.code, code, c.exit, l.stderr)
		}
		if c.exit == 3 && !strings.Contains(l.stderr.String(), "got: close code 4003 (application) \"bye\"") {
			t.Errorf("the difference does not show the client's close: %s", l.stderr)
		}
	}
}
