package script

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// TestHTTPServeCurl: a device's routes answer curl, keep-alive included.
func TestHTTPServeCurl(t *testing.T) {
	e2e.Need(t, "curl")
	p, err := Compile("web.lua", []byte(`
local hits = 0
local srv = assert(http.serve("127.0.0.1:0", {
  ["/"] = "<h1>board</h1>",
  ["GET /status"] = function(req)
    hits = hits + 1
    return 200, "hits " .. hits .. " q=" .. req.query, { ["content-type"] = "text/plain" }
  end,
  ["POST /led"] = function(req) return 201, "led " .. req.body .. " " .. req.headers["x-board"] end,
}))
print(srv:addr())
sleep(3)
srv:close()
`))
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
	e2e.WaitFor(t, 2*time.Second, "the address", func() bool { return strings.Contains(out.String(), "\n") })
	base := "http://" + strings.TrimSpace(out.String())
	curl := func(args ...string) string {
		b, err := exec.Command("curl", append([]string{"-sS", "--max-time", "5"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v %s", args, err, b)
		}
		return string(b)
	}
	// two requests on one connection (curl reuses it), a chunked POST, a 404
	got := curl("-w", " %{http_code} %{num_connects}\n", base+"/", base+"/status?x=1")
	if got != "<h1>board</h1> 200 1\nhits 1 q=x=1 200 0\n" {
		t.Fatalf("curl / /status: %q", got)
	}
	got = curl("-H", "Transfer-Encoding: chunked", "-H", "X-Board: b1", "--data-binary", "on", base+"/led")
	if got != "led on b1" {
		t.Fatalf("chunked POST: %q", got)
	}
	got = curl("-w", " %{http_code}", base+"/nope")
	if got != "no route for GET /nope\n 404" {
		t.Fatalf("404: %q", got)
	}
	// a malformed request gets a 400 and the connection ends
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /\r\nbad header\r\n\r\n")
	b := make([]byte, 512)
	n, _ := c.Read(b)
	if !strings.HasPrefix(string(b[:n]), "HTTP/1.1 400 Bad Request\r\n") || !strings.Contains(string(b[:n]), "malformed") {
		t.Fatalf("malformed request: %q", b[:n])
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestHTTPClientPythonServer: http.get from python3 -m http.server.
func TestHTTPClientPythonServer(t *testing.T) {
	e2e.Need(t, "python3")
	dir := t.TempDir()
	if err := exec.Command("sh", "-c", "printf 'hello from a file' > "+dir+"/f.txt").Run(); err != nil {
		t.Fatal(err)
	}
	port := e2e.FreePort(t)
	e2e.Start(t, "python3", "-m", "http.server", fmt.Sprint(port), "--bind", "127.0.0.1", "--directory", dir)
	e2e.WaitListen(t, port)
	r := run(t, fmt.Sprintf(`
local r = assert(http.get("http://127.0.0.1:%d/f.txt"))
print(r.status, r.body, r.headers["content-length"])
r = assert(http.get("http://127.0.0.1:%d/missing"))
print(r.status)
`, port, port), 10*time.Second, nil)
	if r.err != nil || r.out != "200\thello from a file\t17\n404\n" {
		t.Fatalf("%v %q %s", r.err, r.out, r.errOut)
	}
}

// TestHTTPClientBodies: content-length with keep-alive (one connection for
// three requests), chunked, a body running to the close, and servers that
// misbehave.
func TestHTTPClientBodies(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					for { // the rest of the head
						h, err := br.ReadString('\n')
						if err != nil || h == "\r\n" {
							break
						}
					}
					switch path := strings.Fields(line)[1]; path {
					case "/len":
						fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
					case "/chunked":
						fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n")
					case "/eof":
						fmt.Fprintf(c, "HTTP/1.0 200 OK\r\n\r\nuntil the end")
						return
					case "/short":
						fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly this")
						return
					case "/badchunk":
						fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
						return
					case "/hangup":
						return
					case "/silent":
						time.Sleep(2 * time.Second)
						return
					}
				}
			}()
		}
	}()
	base := "http://" + ln.Addr().String()
	r := run(t, strings.ReplaceAll(`
for _, p in ipairs({"/len", "/chunked", "/len"}) do
  local r = assert(http.get(BASE .. p))
  print(r.status, r.body)
end
print(http.get(BASE .. "/eof").body)
print(http.get(BASE .. "/short"))
print(http.get(BASE .. "/badchunk"))
print(http.get(BASE .. "/hangup"))
print(http.request{url = BASE .. "/silent", timeout = 0.3})
`, "BASE", fmt.Sprintf("%q", base)), 10*time.Second, nil)
	want := `200	hello
200	hello world
200	hello
until the end
nil	the body ended after fewer than its 50 bytes: unexpected EOF
nil	bad chunk size "zz"
nil	the server closed the connection without a response
nil	no response within 300ms
`
	if r.err != nil || r.out != want {
		t.Fatalf("%v\n%s\nwant\n%s\n%s", r.err, r.out, want, r.errOut)
	}
	// /len, /chunked, /len and /eof on one connection (kept alive until
	// /eof's server closed it), then one each for the rest
	if n := conns.Load(); n != 5 {
		t.Errorf("%d connections, want 5", n)
	}
}

// A route returning only a body serves it with 200; a coap.serve route
// runs once per request.
func TestRouteBodyOnlyAndOnce(t *testing.T) {
	r := run(t, `
local n = 0
local s = assert(http.serve("127.0.0.1:0", { ["/a"] = function() return "OFF\n" end }))
local c = assert(coap.serve("127.0.0.1:0", { ["/n"] = function() n = n + 1; return "n" .. n end }))
local resp = assert(http.get("http://" .. s:addr() .. "/a"))
print(resp.status, resp.body)
print(assert(coap.request("coap://" .. c:addr() .. "/n")).payload, assert(coap.request("coap://" .. c:addr() .. "/n")).payload)
s:close()
c:close()
`, 10*time.Second, nil)
	if r.err != nil || r.out != "200\tOFF\n\nn1\tn2\n" {
		t.Fatalf("got %q, %v", r.out, r.err)
	}
}

// The http and coap clients' exchanges are connection events: open, the
// request and the response as their exact bytes, close.
func TestModuleClientEvents(t *testing.T) {
	rec := &recorder{}
	r := run(t, `
local s = assert(http.serve("127.0.0.1:0", { ["/a"] = "A" }))
local c = assert(coap.serve("127.0.0.1:0", { ["/b"] = "B" }))
assert(http.get("http://" .. s:addr() .. "/a"))
assert(coap.request("coap://" .. c:addr() .. "/b"))
s:close()
c:close()
`, 10*time.Second, &Env{Sink: rec})
	if r.err != nil {
		t.Fatal(r.err)
	}
	byConn := map[uint64][]event.Event{}
	for _, e := range rec.ev {
		byConn[e.Conn] = append(byConn[e.Conn], e)
	}
	var httpOK, coapOK bool
	for _, evs := range byConn {
		if evs[0].Kind != event.Open || evs[0].Role != event.Client {
			continue
		}
		var kinds []string
		for _, e := range evs {
			kinds = append(kinds, e.Kind.String()+":"+e.From.String())
		}
		got := strings.Join(kinds, " ")
		switch evs[0].Transport {
		case "tcp":
			httpOK = got == "open:unknown data:client data:server close:client" &&
				strings.HasPrefix(string(evs[1].Data), "GET /a HTTP/1.1\r\n") &&
				string(evs[2].Data) == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"
			if !httpOK {
				t.Errorf("http client events: %s; %q %q", got, evs[1].Data, evs[2].Data)
			}
		case "udp":
			coapOK = got == "open:unknown data:client data:server close:client" && len(evs[1].Data) > 4 &&
				strings.HasSuffix(string(evs[2].Data), "\xffB")
			if !coapOK {
				t.Errorf("coap client events: %s; % x", got, evs[2].Data)
			}
		}
	}
	if !httpOK || !coapOK {
		t.Fatalf("http %v, coap %v: %d connections' events", httpOK, coapOK, len(byConn))
	}
}
