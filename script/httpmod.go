package script

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	whttp "github.com/wirecat-dev/wirecat/luamod/http"
)

// The Lua http module: a client (http.request, http.get) whose request runs
// on a goroutine of its own and wakes the calling coroutine with the
// response, keeping idle connections per device for reuse; and a server
// (http.serve) that is net.listen with an HTTP request framing and a small
// Lua loop calling the script's routes.

// httpIdleMax is how many idle connections a device keeps per server.
const httpIdleMax = 4

type httpConn struct {
	nc    net.Conn
	br    *bufio.Reader
	tee   *teeReader
	w     *wireLog // its events
	reuse bool     // it carried a request before
}

func (d *Device) newHTTPConn(nc net.Conn, tr string) *httpConn {
	tee := &teeReader{r: nc}
	return &httpConn{nc: nc, br: bufio.NewReader(tee), tee: tee, w: d.openWire(nc, tr, event.Client)}
}

// close closes the connection, by the device (byUs) or because it failed.
func (hc *httpConn) close(byUs bool, err error) {
	hc.w.close(byUs, err)
	hc.nc.Close()
}

// response takes the bytes of the response just read off the tee: what
// was read minus what the bufio.Reader holds beyond it.
func (hc *httpConn) response() []byte {
	n := len(hc.tee.got) - hc.br.Buffered()
	wire := hc.tee.got[:n:n]
	hc.tee.got = append([]byte(nil), hc.tee.got[n:]...)
	return wire
}

// teeReader keeps what it reads, for the events: the exact bytes of each
// response on the wire.
type teeReader struct {
	r   io.Reader
	got []byte
}

func (t *teeReader) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	t.got = append(t.got, b[:n]...)
	return n, err
}

// httpPool is a device's idle client connections, by dial address.
type httpPool map[string][]*httpConn

func (d *Device) httpIdle() httpPool {
	if d.http == nil {
		d.http = httpPool{}
		d.onClose = append(d.onClose, func() {
			for _, cs := range d.http {
				for _, c := range cs {
					c.close(true, nil)
				}
			}
		})
	}
	return d.http
}

// http.get(url[, headers]) is http.request{url = url, headers = headers}.
func httpGet(L *lua.LState) int {
	t := L.CreateTable(0, 2)
	t.RawSetString("url", lua.LString(L.CheckString(1)))
	if h := L.OptTable(2, nil); h != nil {
		t.RawSetString("headers", h)
	}
	L.SetTop(0)
	L.Push(t)
	return httpRequest(L)
}

// http.request{method=, url=, headers=, body=, timeout=} -> response, or
// nil, err. The response is {status=, reason=, headers=, body=, version=}.
func httpRequest(L *lua.LState) int {
	d := devOf(L)
	var opts *lua.LTable
	switch v := L.Get(1).(type) {
	case lua.LString:
		opts = L.CreateTable(0, 1)
		opts.RawSetString("url", v)
	case *lua.LTable:
		opts = v
	default:
		L.ArgError(1, "a url or a table {url=, method=, headers=, body=} expected")
	}
	raw, _ := optString(opts, "url")
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return pushErr(L, fmt.Sprintf("http.request: %q is not an http:// or https:// url", raw))
	}
	body, _ := optString(opts, "body")
	method, ok := optString(opts, "method")
	if !ok {
		method = "GET"
		if body != "" {
			method = "POST"
		}
	}
	method = strings.ToUpper(method)
	if method == "" || strings.ContainsAny(method, " \r\n") {
		L.ArgError(1, "method: not a method")
	}
	headers := map[string]string{}
	if h, ok := opts.RawGetString("headers").(*lua.LTable); ok {
		h.ForEach(func(k, v lua.LValue) { headers[k.String()] = v.String() })
	}
	if bad := whttp.BadField(headers); bad != "" {
		L.ArgError(1, fmt.Sprintf("headers: %q would break the request", bad))
	}
	o := d.parseOpts(L, withoutFrame(L, opts))
	connectRetry(L, opts, &o) // opts.retry as net.connect's
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	spec := host
	if d.env.Connect != "" {
		spec = d.env.Connect
	}
	if u.Scheme == "https" && !strings.Contains(spec, "://") {
		spec = "tls://" + spec
		if o.link.TLS.SNI == "" {
			o.link.TLS.SNI = u.Hostname()
		}
	}
	a, err := link.Parse(spec, false)
	if err != nil {
		return pushErr(L, err.Error())
	}
	if a.Packet() {
		return pushErr(L, "http needs a stream transport, not "+a.Transport())
	}
	if err := d.proxyFor(a, &o); err != nil {
		return pushErr(L, err.Error())
	}
	wire := whttp.WriteRequest(method, u.RequestURI(), u.Host, headers, []byte(body))
	max := d.maxFrame()
	pool := d.httpIdle()
	var hc *httpConn
	if idle := pool[spec]; len(idle) > 0 {
		hc = idle[len(idle)-1]
		pool[spec] = idle[:len(idle)-1]
	}
	t := d.block(L, "http.request")
	st := d.env.stats()
	start := time.Now()
	go func() {
		// o.timeout bounds the whole exchange, or, when the connect is
		// retried, each attempt and then the exchange.
		deadline := time.Now().Add(o.timeout)
		roundTrip := func(hc *httpConn) (*whttp.Response, error) {
			hc.nc.SetDeadline(deadline)
			if _, err := hc.nc.Write(wire); err != nil {
				return nil, err
			}
			hc.w.sent(wire)
			st.MsgsSent.Add(1)
			st.BytesSent.Add(int64(len(wire)))
			resp, err := whttp.ReadResponse(hc.br, method, max)
			if err == nil {
				hc.w.received(hc.response())
			}
			return resp, err
		}
		var resp *whttp.Response
		var err error
		if hc != nil {
			resp, err = roundTrip(hc)
			if err != nil && staleConn(err) { // the server closed it while idle: once more on a new one
				hc.close(false, nil)
				hc = nil
			}
		}
		if hc == nil {
			var nc net.Conn
			nc, err = d.dialModule(a, &o)
			if err == nil {
				st.Conns.Add(1)
				if o.retry != 0 {
					deadline = time.Now().Add(o.timeout)
				}
				hc = d.newHTTPConn(nc, a.Transport())
				resp, err = roundTrip(hc)
			}
		}
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && d.ctx.Err() == nil {
			err = fmt.Errorf("no response within %v", o.timeout)
		}
		if err == nil {
			st.MsgsRecv.Add(1)
			st.BytesRecv.Add(int64(len(resp.Body)))
			st.observe("http", start)
		} else {
			d.failed()
		}
		posted := d.post(func() {
			if err != nil {
				if hc != nil {
					hc.close(false, err)
				}
				msg := link.Cause(err)
				if errors.Is(err, io.EOF) {
					msg = "the server closed the connection without a response"
				}
				d.wake(t, lua.LNil, lua.LString(msg))
				return
			}
			if resp.KeepAlive && d.ctx.Err() == nil && len(pool[spec]) < httpIdleMax {
				hc.nc.SetDeadline(time.Time{})
				hc.reuse = true
				pool[spec] = append(pool[spec], hc)
			} else {
				hc.close(resp.KeepAlive, nil)
			}
			d.wake(t, responseTable(d.L, resp))
		})
		if !posted && hc != nil {
			hc.close(true, nil)
		}
	}()
	return L.Yield()
}

// staleConn: a reused connection failed before any answer, as one the
// server closed while it was idle does.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func headerTable(L *lua.LState, h whttp.Header) *lua.LTable {
	t := L.CreateTable(0, len(h))
	for k, v := range h {
		t.RawSetString(k, lua.LString(v))
	}
	return t
}

func responseTable(L *lua.LState, r *whttp.Response) *lua.LTable {
	t := L.CreateTable(0, 5)
	t.RawSetString("status", lua.LNumber(r.Status))
	t.RawSetString("reason", lua.LString(r.Reason))
	t.RawSetString("version", lua.LString(r.Version))
	t.RawSetString("headers", headerTable(L, r.Header))
	t.RawSetString("body", lua.LString(r.Body))
	return t
}

// httpFramer cuts a stream into whole requests (head and body).
type httpFramer struct{ max int }

func (f httpFramer) Decode(buf []byte) ([]byte, int, error) {
	n, err := whttp.FrameRequest(buf, f.max)
	if err != nil || n == 0 {
		return nil, 0, err
	}
	return buf[:n], n, nil
}

func (f httpFramer) Encode(dst, msg []byte) ([]byte, error) { return append(dst, msg...), nil }

// serveSrc is the connection loop of http.serve, compiled once and made a
// function of each device's own state (so its globals are the device's).
const serveSrc = `local routes, parse, respond, open, st, idle = ...
return function(conn)
  while true do
    -- wait for the next request, hanging up on a connection idle for idle
    -- seconds or once the listener is closed
    local raw, err, waited = nil, nil, 0
    repeat
      raw, err = conn:recv(0.5)
      if not raw and err ~= "timeout" then return end
      waited = waited + 0.5
    until raw or waited >= idle or not open(st.listener)
    if not raw then return end
    local req, err = parse(raw)
    if not req then
      conn:send(respond(400, err .. "\n", nil, false))
      return
    end
    local h = routes[req.method .. " " .. req.path] or routes[req.path] or routes["*"]
    local status, body, headers
    if type(h) == "function" then
      -- a, b = b, a assigns in order here (gopher-lua): no swap in place
      local r1, r2, r3 = h(req)
      if type(r1) == "number" then
        status, body, headers = r1, r2, r3
      else
        status, body, headers = 200, r1, r2
      end
    elseif type(h) == "string" then
      status, body = 200, h
    else
      status, body = 404, "no route for " .. req.method .. " " .. req.path .. "\n"
    end
    local ok = conn:send(respond(status, body, headers, req.keep_alive))
    if not ok or not req.keep_alive then return end
  end
end`

var serveChunk = luaChunk{name: "http.serve", src: serveSrc}

func serveFunc(L *lua.LState) *lua.LFunction { return serveChunk.function(L) }

// luaChunk is Lua code of a module, compiled once and made a function of
// each device's own state when used (so its globals are the device's).
type luaChunk struct {
	name, src string
	once      sync.Once
	proto     *lua.FunctionProto
}

func (c *luaChunk) function(L *lua.LState) *lua.LFunction {
	c.once.Do(func() {
		chunk, err := parse.Parse(strings.NewReader(c.src), c.name)
		if err != nil {
			panic(err)
		}
		c.proto, err = lua.Compile(chunk, c.name)
		if err != nil {
			panic(err)
		}
	})
	return L.NewFunctionFromProto(c.proto)
}

// parse(raw) -> the request table, or nil, err.
func httpParse(L *lua.LState) int {
	r, err := whttp.ParseRequest([]byte(L.CheckString(1)), devOf(L).maxFrame())
	if err != nil {
		return pushErr(L, err.Error())
	}
	t := L.CreateTable(0, 8)
	for k, v := range map[string]string{"method": r.Method, "target": r.Target, "path": r.Path,
		"query": r.Query, "version": r.Version, "body": string(r.Body)} {
		t.RawSetString(k, lua.LString(v))
	}
	t.RawSetString("headers", headerTable(L, r.Header))
	t.RawSetString("keep_alive", lua.LBool(r.KeepAlive))
	L.Push(t)
	return 1
}

// respond(status, body, headers, keep) -> the response's bytes.
func httpRespond(L *lua.LState) int {
	status := L.CheckInt(1)
	if status < 100 || status > 999 {
		L.RaiseError("http.serve: a route returned status %d", status)
	}
	body := ""
	if v := L.Get(2); v != lua.LNil {
		body = L.CheckString(2)
	}
	h := map[string]string{}
	if t, ok := L.Get(3).(*lua.LTable); ok {
		t.ForEach(func(k, v lua.LValue) { h[k.String()] = v.String() })
	}
	if bad := whttp.BadField(h); bad != "" {
		L.RaiseError("http.serve: header %q would break the response", bad)
	}
	L.Push(lua.LString(whttp.WriteResponse(status, h, []byte(body), lua.LVAsBool(L.Get(4)))))
	return 1
}

// http.serve(addr[, opts], routes) -> listener, or nil, err. routes maps
// "METHOD /path" or "/path" (any method) or "*" (anything else) to a
// function(req) returning status, body, headers (or just a body), or to a
// string served as is.
func httpServe(L *lua.LState) int {
	opts, routes := serveArgs(L)
	addr := L.CheckString(1)
	d := devOf(L)
	o := listenOpts(L, opts)
	idle := optNumber(opts, "idle", 5)
	if idle <= 0 {
		L.ArgError(2, "idle must be positive")
	}
	st := L.CreateTable(0, 1)
	return serveListen(L, d, serveFunc(d.L), addr, o, goCodec{httpFramer{d.maxFrame()}}, st,
		routes, L.NewFunction(httpParse), L.NewFunction(httpRespond), L.NewFunction(httpOpen), st, lua.LNumber(idle))
}

// serveListen is what http.serve, coap.serve and modbus.serve share: it
// calls the module's serve chunk with args, which returns the loop each
// connection runs, then net.listen(addr, o, loop) with the protocol's
// framing c. st (one of args) gets the listener, for the loop's open().
func serveListen(L *lua.LState, d *Device, chunk *lua.LFunction, addr string, o lua.LValue, c codec, st *lua.LTable, args ...lua.LValue) int {
	if err := L.CallByParam(lua.P{Fn: chunk, NRet: 1, Protect: true}, args...); err != nil {
		L.RaiseError("%s", luaErrMsg(err))
	}
	loop := L.Get(-1)
	L.SetTop(0)
	L.Push(lua.LString(addr))
	L.Push(o)
	L.Push(loop)
	d.listenCodec = c
	defer func() { d.listenCodec = nil }() // also when net.listen raises
	n := netListen(L)
	if u, ok := L.Get(-n).(*lua.LUserData); ok {
		st.RawSetString("listener", u)
	}
	return n
}

// open(listener) reports whether an http.serve listener is still open.
func httpOpen(L *lua.LState) int {
	u, ok := L.Get(1).(*lua.LUserData)
	if !ok {
		L.Push(lua.LTrue) // not set yet: the listener is being made
		return 1
	}
	l, _ := u.Value.(*listener)
	L.Push(lua.LBool(l != nil && !l.closed))
	return 1
}
