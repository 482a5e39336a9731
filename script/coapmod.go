package script

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/luamod/coap"
	"github.com/wirecat-dev/wirecat/proto"
)

// The Lua coap module: coap.request, an exchange run on a goroutine of its
// own (retransmitting a confirmable request, waiting out a separate
// response, fetching the blocks of a block-wise one) that wakes the calling
// coroutine with the response; coap.serve, net.listen on UDP or DTLS
// calling the script's routes once per request; and observe (RFC 7641) on
// both sides: coap.notify to the observers a coap.serve registered (a
// sender of the UDP socket, or a DTLS association), coap.observe as a
// client.

// coapBlockSzx is the block size a server sends and a client asks for:
// 2^(4+6) = 1024 bytes, which fits a datagram on any link.
const coapBlockSzx = 6

func randUint(max int64) uint64 {
	n, err := rand.Int(rand.Reader, big.NewInt(max))
	if err != nil {
		return uint64(time.Now().UnixNano() % max)
	}
	return n.Uint64()
}

// coapReq is a request ready to go.
type coapReq struct {
	a              link.Addr
	o              connOpts
	msg            *coap.Message
	typ            message.Type
	timeout, retry time.Duration
	max            int
	path           string
}

// coap.request{url=, method=, payload=, confirmable=, content_format=,
// timeout=, retry=} -> {code=, payload=, content_format=} | nil, err.
func coapRequest(L *lua.LState) int {
	d := devOf(L)
	rq, errMsg := coapPrepare(L, d, false)
	if rq == nil {
		return pushErr(L, errMsg)
	}
	t := d.block(L, "coap.request")
	start := time.Now()
	go func() {
		resp, body, err := coapExchange(d, rq.a, &rq.o, rq.msg, rq.typ, rq.timeout, rq.retry, rq.max)
		d.post(func() {
			if err != nil {
				d.failed()
				d.wake(t, lua.LNil, lua.LString(err.Error()))
				return
			}
			d.env.stats().observe("coap", start)
			d.wake(t, coapResponse(d.L, resp, body))
		})
	}()
	return L.Yield()
}

func coapResponse(L *lua.LState, resp *coap.Message, body []byte) *lua.LTable {
	r := L.CreateTable(0, 3)
	r.RawSetString("code", lua.LString(coap.CodeString(resp.Code)))
	r.RawSetString("payload", lua.LString(body))
	if f, err := resp.Options.ContentFormat(); err == nil {
		r.RawSetString("content_format", lua.LNumber(f))
	}
	if v, err := resp.Options.Observe(); err == nil {
		r.RawSetString("observe", lua.LNumber(v))
	}
	return r
}

// coapPrepare reads a request's url or options (argument 1); nil and why
// for a url it cannot use.
func coapPrepare(L *lua.LState, d *Device, observe bool) (*coapReq, string) {
	var opts *lua.LTable
	switch v := L.Get(1).(type) {
	case lua.LString:
		opts = L.CreateTable(0, 1)
		opts.RawSetString("url", v)
	case *lua.LTable:
		opts = v
	default:
		L.ArgError(1, "a url or a table {url=, method=, payload=} expected")
	}
	raw, _ := optString(opts, "url")
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "coap" && u.Scheme != "coaps") || u.Host == "" {
		return nil, fmt.Sprintf("%q is not a coap:// or coaps:// url", raw)
	}
	secure := u.Scheme == "coaps" // CoAP over DTLS
	method, ok := optString(opts, "method")
	if !ok {
		method = "GET"
	}
	code, ok := coap.Methods[strings.ToUpper(method)]
	if !ok {
		L.ArgError(1, "method: GET, POST, PUT or DELETE")
	}
	payload, _ := optString(opts, "payload")
	con := true
	if v := opts.RawGetString("confirmable"); v != lua.LNil {
		con = lua.LVAsBool(v)
	}
	cf := -1
	if v, ok := opts.RawGetString("content_format").(lua.LNumber); ok {
		cf = int(v)
	}
	retry := dur(optNumber(opts, "retry", 2)) // RFC 7252's ACK_TIMEOUT
	host, scheme := u.Host, "udp://"
	if secure {
		scheme = "dtls://"
	}
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[bool]string{false: "5683", true: "5684"}[secure])
	}
	spec := scheme + host
	if d.env.Connect != "" {
		spec = d.env.Connect
		if !strings.Contains(spec, "://") {
			spec = scheme + spec
		}
	}
	a, err := link.Parse(spec, false)
	if err != nil {
		return nil, err.Error()
	}
	o := d.parseOpts(L, withoutFrame(L, opts))
	timeout := o.timeout // opts.timeout, else -w, else 10 s
	if err := d.proxyFor(a, &o); err != nil {
		return nil, err.Error()
	}
	if v, ok := optString(opts, "psk"); ok { // DTLS pre-shared key, in hex
		o.link.TLS.PSK = v
	}
	if v, ok := optString(opts, "psk_identity"); ok {
		o.link.TLS.PSKIdentity = v
	}
	token := make([]byte, 4)
	rand.Read(token)
	base := &coap.Message{Token: token, Code: code, Options: message.Options{}}
	buf := make([]byte, 256)
	if base.Options, _, err = base.Options.SetPath(buf, u.Path); err != nil {
		return nil, "path: " + err.Error()
	}
	if observe {
		b := make([]byte, 4)
		base.Options, _, _ = base.Options.SetObserve(b, 0) // register
	}
	for _, q := range strings.Split(u.RawQuery, "&") {
		if q != "" {
			base.Options = base.Options.Add(message.Option{ID: coap.URIQuery, Value: []byte(q)})
		}
	}
	if cf >= 0 {
		b := make([]byte, 4)
		base.Options, _, _ = base.Options.SetContentFormat(b, message.MediaType(cf))
	}
	base.Payload = []byte(payload)
	typ := coap.NON
	if con {
		typ = coap.CON
	}
	return &coapReq{a: a, o: o, msg: base, typ: typ, timeout: timeout, retry: retry, max: d.maxFrame(), path: u.Path}, ""
}

// coapDial opens a CoAP request's socket (counted in the fleet's
// connections), every datagram reported to its wire log.
func (d *Device) coapDial(a link.Addr, o *connOpts) (*loggedConn, error) {
	nc, err := d.dialModule(a, o)
	if err != nil {
		return nil, errors.New(link.Cause(err))
	}
	st := d.env.stats()
	st.Conns.Add(1)
	return &loggedConn{nc, d.openWire(nc, a.Transport(), event.Client), st}, nil
}

// coapExchange sends req (and, for a block-wise answer, a request per
// further block) and returns the response with the whole payload.
func coapExchange(d *Device, a link.Addr, o *connOpts, req *coap.Message, typ message.Type, timeout, retry time.Duration, max int) (*coap.Message, []byte, error) {
	nc, err := d.coapDial(a, o)
	if err != nil {
		return nil, nil, err
	}
	defer nc.Close()
	deadline := time.Now().Add(timeout)
	st := nc.st
	var body []byte
	for num := uint32(0); ; num++ {
		m := *req
		m.Type = typ
		m.MessageID = int32(randUint(1 << 16))
		if num > 0 {
			b := make([]byte, 4)
			m.Options, _ = m.Options.Clone()
			m.Options, _, _ = m.Options.SetUint32(b, coap.Block2, coap.Block(num, false, coapBlockSzx))
			m.Payload = nil
		}
		resp, err := coapOne(nc, &m, deadline, retry)
		if err != nil {
			return nil, nil, err
		}
		st.MsgsRecv.Add(1)
		body = append(body, resp.Payload...)
		if len(body) > max {
			return nil, nil, fmt.Errorf("a block-wise payload over the maximum of %d bytes", max)
		}
		v, err := resp.Options.GetUint32(coap.Block2)
		if err != nil {
			return resp, body, nil
		}
		bnum, more, _ := coap.BlockOf(v)
		if bnum != num {
			return nil, nil, fmt.Errorf("asked for block %d, got block %d", num, bnum)
		}
		if !more {
			return resp, body, nil
		}
	}
}

// coapRest is the whole payload of an observe answer or notification r:
// r's own, or, when r is the first block of more (RFC 7959 §2.6), those
// blocks fetched with GETs of their own (a fresh token, no Observe) on nc.
// Notifications that come meanwhile are skipped: the next one is newer.
func coapRest(nc net.Conn, rq *coapReq, r *coap.Message, deadline time.Time) ([]byte, error) {
	v, err := r.Options.GetUint32(coap.Block2)
	if err != nil {
		return r.Payload, nil
	}
	num, more, _ := coap.BlockOf(v)
	szx := v & 7
	if num != 0 || !more {
		return r.Payload, nil
	}
	body := append([]byte{}, r.Payload...)
	token := make([]byte, 4)
	rand.Read(token)
	for num = 1; more; num++ {
		m := *rq.msg
		m.Token, m.Type, m.MessageID, m.Payload = token, coap.CON, int32(randUint(1<<16)), nil
		m.Options, _ = rq.msg.Options.Clone()
		m.Options = m.Options.Remove(coap.Observe)
		b := make([]byte, 4)
		m.Options, _, _ = m.Options.SetUint32(b, coap.Block2, coap.Block(num, false, szx))
		resp, err := coapOne(nc, &m, deadline, rq.retry)
		if err != nil {
			return nil, fmt.Errorf("block %d: %v", num, err)
		}
		v, err := resp.Options.GetUint32(coap.Block2)
		if err != nil {
			return nil, fmt.Errorf("block %d: the answer (%s) is not a block", num, coap.CodeString(resp.Code))
		}
		var got uint32
		got, more, _ = coap.BlockOf(v)
		if got != num {
			return nil, fmt.Errorf("asked for block %d, got block %d", num, got)
		}
		if body = append(body, resp.Payload...); len(body) > rq.max {
			return nil, fmt.Errorf("a block-wise payload over the maximum of %d bytes", rq.max)
		}
	}
	return body, nil
}

// coapOne sends m and waits for its response: retransmitted (confirmable)
// every retry, doubling, until deadline; an empty ACK means a separate
// response will follow, which is acknowledged when it is confirmable.
func coapOne(nc net.Conn, m *coap.Message, deadline time.Time, retry time.Duration) (*coap.Message, error) {
	wire, err := coap.Encode(m)
	if err != nil {
		return nil, err
	}
	con := m.Type == coap.CON
	acked := false // an empty ACK came: stop sending, a separate response follows
	sends, next, interval := 0, time.Time{}, retry
	b := make([]byte, 64<<10)
	for {
		now := time.Now()
		if now.After(deadline) {
			return nil, errors.New("no response within the timeout")
		}
		// RFC 7252 4.2: a CON goes again after ACK_TIMEOUT, doubling, at
		// most MAX_RETRANSMIT (4) times; a NON goes once.
		if sends == 0 || (con && !acked && sends <= 4 && !now.Before(next)) {
			if _, err := nc.Write(wire); err != nil {
				return nil, errors.New(link.Cause(err))
			}
			sends++
			next, interval = now.Add(interval), interval*2
		}
		wait := deadline
		if con && !acked && sends <= 4 && next.Before(wait) {
			wait = next
		}
		nc.SetReadDeadline(wait)
		n, err := nc.Read(b)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return nil, errors.New(link.Cause(err))
		}
		r, err := coap.Decode(append([]byte{}, b[:n]...))
		if err != nil {
			continue // not ours to read: a stray datagram
		}
		switch {
		case r.Type == coap.RST && r.MessageID == m.MessageID:
			return nil, errors.New("the server reset the exchange (RST)")
		case r.Type == coap.ACK && r.Code == codes.Empty && r.MessageID == m.MessageID:
			acked = true // a separate response follows
			continue
		case string(r.Token) != string(m.Token):
			continue
		}
		if r.Type == coap.CON { // a separate response: acknowledge it
			ack, _ := coap.Encode(&coap.Message{Type: coap.ACK, Code: codes.Empty, MessageID: r.MessageID})
			if id, bad := coap.UnknownCritical(r); bad {
				rst, _ := coap.Encode(&coap.Message{Type: coap.RST, Code: codes.Empty, MessageID: r.MessageID})
				nc.Write(rst)
				return nil, fmt.Errorf("the response has an unknown critical option %d", id)
			}
			nc.Write(ack)
		}
		if id, bad := coap.UnknownCritical(r); bad {
			return nil, fmt.Errorf("the response has an unknown critical option %d", id)
		}
		return r, nil
	}
}

// coapServeSrc is coap.serve's handler. On UDP it serves one request per
// run (a sender's next datagram starts it again); on DTLS (wait nil) one
// association, each record a request, until the client ends it or the
// listener is closed (within half a second).
const coapServeSrc = `local parse, respond, routes, wait, open, st = ...
-- a route's results: code, payload[, content_format], or a payload alone
local function pick(...)
  if select("#", ...) >= 2 then return ... end
  return "2.05", (...)
end
local function answer(h, req)
  if type(h) == "string" then return "2.05", h end
  if type(h) ~= "function" then return "4.04", "" end
  return pick(h(req)) -- called once: a route may count, or change state
end
local function serve(conn, d)
  local req, reply = parse(d, conn)
  if reply then conn:send(reply) end
  if not req then return end
  local h = routes[req.method .. " " .. req.path] or routes[req.path] or routes["*"]
  local code, payload, cf = answer(h, req)
  conn:send(respond(req, code, payload, cf))
end
return function(conn)
  if wait == 0 then
    local d = conn:recv(0)
    if d then serve(conn, d) end
    return
  end
  -- DTLS: until the client ends the association or the listener closes
  while true do
    local d, err = conn:recv(0.5)
    if d then
      serve(conn, d)
    elseif err ~= "timeout" or not open(st.listener) then
      return
    end
  end
end`

var coapServeChunk = luaChunk{name: "coap.serve", src: coapServeSrc}

// parse(datagram) -> request table, or nil and maybe the bytes to answer
// with (RST to a ping or a malformed CON, 4.02 to an unknown critical
// option).
func coapParse(L *lua.LState) int {
	b := []byte(L.CheckString(1))
	m, err := coap.Decode(b)
	if err != nil {
		if len(b) >= 4 && b[0]>>6 == 1 && (b[0]>>4)&3 == 0 {
			rst, _ := coap.Encode(&coap.Message{Type: coap.RST, Code: codes.Empty, MessageID: int32(b[2])<<8 | int32(b[3])})
			L.Push(lua.LNil)
			L.Push(lua.LString(rst))
			return 2
		}
		return 0
	}
	if m.Type == coap.RST { // a client that no longer wants our notifications
		if c, ok := connOf(L.Get(2)); ok {
			devOf(L).coapObs.forget(peerAddr(c))
		}
		return 0
	}
	if m.Type == coap.ACK { // of a confirmable notification: its client is there
		if c, ok := connOf(L.Get(2)); ok {
			devOf(L).coapObs.acked(peerAddr(c), m.MessageID)
		}
		return 0
	}
	method := coap.MethodName(m.Code)
	if m.Code == codes.Empty || method == "" {
		if m.Type == coap.CON { // a ping, or a request we cannot serve
			rst, _ := coap.Encode(&coap.Message{Type: coap.RST, Code: codes.Empty, MessageID: m.MessageID})
			L.Push(lua.LNil)
			L.Push(lua.LString(rst))
			return 2
		}
		return 0
	}
	if id, bad := coap.UnknownCritical(m); bad {
		resp := coapReply(m, codes.BadOption, []byte(fmt.Sprintf("unknown critical option %d", id)), -1)
		L.Push(lua.LNil)
		L.Push(lua.LString(resp))
		return 2
	}
	t := L.CreateTable(0, 8)
	t.RawSetString("method", lua.LString(method))
	path, _ := m.Options.Path()
	if path == "" {
		path = "/"
	} else if path[0] != '/' {
		path = "/" + path
	}
	t.RawSetString("path", lua.LString(path))
	qs := make([]string, 8)
	if n, err := m.Options.GetStrings(coap.URIQuery, qs); err == nil {
		q := L.CreateTable(n, 0)
		for _, s := range qs[:n] {
			q.Append(lua.LString(s))
		}
		t.RawSetString("query", q)
	} else {
		t.RawSetString("query", L.CreateTable(0, 0))
	}
	t.RawSetString("payload", lua.LString(m.Payload))
	t.RawSetString("confirmable", lua.LBool(m.Type == coap.CON))
	if v, err := m.Options.Observe(); err == nil && method == "GET" {
		if c, ok := connOf(L.Get(2)); ok {
			d := devOf(L)
			if d.coapObs == nil {
				d.coapObs = &coapObservers{byPath: map[string][]*coapObserver{}}
			}
			t.RawSetString("observe", lua.LBool(d.coapObs.observe(d, path, c, m.Token, v == 0)))
		}
	}
	if f, err := m.Options.ContentFormat(); err == nil {
		t.RawSetString("content_format", lua.LNumber(f))
	}
	ud := L.NewUserData()
	ud.Value = m
	t.RawSetString("_msg", ud)
	L.Push(t)
	return 1
}

// coapReply answers req: piggybacked on the ACK of a CON, else a NON; a
// payload over one block goes block-wise (the block asked for, else the
// first).
func coapReply(req *coap.Message, code codes.Code, payload []byte, cf int) []byte {
	return coapReplyObs(req, code, payload, cf, false, 0)
}

// coapReplyObs is coapReply with an Observe option of seq when obs.
func coapReplyObs(req *coap.Message, code codes.Code, payload []byte, cf int, obs bool, seq uint32) []byte {
	wire, _ := coap.Encode(coapAnswer(req, code, payload, cf, obs, seq))
	return wire
}

// coapAnswer is coapReplyObs's message.
func coapAnswer(req *coap.Message, code codes.Code, payload []byte, cf int, obs bool, seq uint32) *coap.Message {
	r := &coap.Message{Token: req.Token, Code: code, Type: coap.NON, MessageID: int32(randUint(1 << 16)), Options: message.Options{}}
	if req.Type == coap.CON {
		r.Type, r.MessageID = coap.ACK, req.MessageID
	}
	num, szx := uint32(0), uint32(coapBlockSzx)
	if v, err := req.Options.GetUint32(coap.Block2); err == nil {
		num, szx = v>>4, min(v&7, coapBlockSzx)
	}
	size := 1 << (4 + szx)
	if len(payload) > size || num > 0 {
		start := int(num) * size
		if start > len(payload) {
			r.Code, payload = codes.BadOption, []byte("no such block")
		} else {
			end := min(start+size, len(payload))
			b := make([]byte, 4)
			r.Options, _, _ = r.Options.SetUint32(b, coap.Block2, coap.Block(num, end < len(payload), szx))
			payload = payload[start:end]
		}
	}
	if cf >= 0 {
		b := make([]byte, 4)
		r.Options, _, _ = r.Options.SetContentFormat(b, message.MediaType(cf))
	}
	if obs {
		b := make([]byte, 4)
		r.Options, _, _ = r.Options.SetObserve(b, seq)
	}
	r.Payload = payload
	return r
}

// coapObserver is a client observing a path of the device's coap.serve:
// over UDP a sender of the listener's socket (pc), over DTLS the
// association's conn (c), which notifications are records of while it
// lasts.
type coapObserver struct {
	tr    string // the listener's transport, for the notifications' events
	addr  string // the client's address
	pc    *peerConn
	c     *conn
	token []byte
	seq   uint32
	// pending is the message id of the last confirmable notification
	// while it is not acknowledged; missed counts the ones never were.
	pending int32
	missed  int
}

// gone: the observer's DTLS association has ended.
func (o *coapObserver) gone() bool { return o.c != nil && o.c.closed }

// coapObservers are a device's observers, by path.
type coapObservers struct {
	byPath map[string][]*coapObserver
	warned bool // the bound was reported
}

const (
	// coapMaxObservers bounds a device's observers.
	coapMaxObservers = 1024
	// Every coapConfirmEvery-th notification to an observer is
	// confirmable (RFC 7641 §4.5): one that leaves coapMaxMissed of them
	// unacknowledged in a row is gone (a client killed, a board off) and
	// is forgotten, so the dead do not fill the bound.
	coapConfirmEvery = 8
	coapMaxMissed    = 2
)

// connOf is the conn a coap.serve handler was given: a datagram
// listener's sender (UDP) or an association (DTLS).
func connOf(v lua.LValue) (*conn, bool) {
	u, ok := v.(*lua.LUserData)
	if !ok {
		return nil, false
	}
	c, ok := u.Value.(*conn)
	return c, ok
}

// peerAddr is the address of c's client.
func peerAddr(c *conn) string {
	if pc, ok := c.nc.(*peerConn); ok {
		return pc.to.String()
	}
	return c.remote
}

// observe registers (or, with add false, removes) an observer of path;
// false when it is not registered (a removal, or the bound is reached:
// the answer then has no Observe option, which tells the client so).
func (s *coapObservers) observe(d *Device, path string, c *conn, token []byte, add bool) bool {
	o := &coapObserver{tr: c.tr, addr: peerAddr(c), token: append([]byte{}, token...), seq: 1, pending: -1}
	if pc, ok := c.nc.(*peerConn); ok {
		// the handler's conn ends with its request; the socket does not
		o.pc = &peerConn{pc: pc.pc, to: pc.to}
	} else {
		o.c = c
	}
	var obs []*coapObserver
	for _, x := range s.byPath[path] {
		if (x.addr != o.addr || string(x.token) != string(token)) && !x.gone() {
			obs = append(obs, x)
		}
	}
	s.byPath[path] = obs
	if !add {
		return false
	}
	total := 0
	for _, l := range s.byPath {
		total += len(l)
	}
	if total >= coapMaxObservers {
		if !s.warned {
			s.warned = true
			d.env.write(d.env.Stderr, fmt.Sprintf("device %d: warning: coap.serve: %s from %s is answered without observe: the device has %d observers, the limit\n",
				d.ID, path, o.addr, coapMaxObservers))
		}
		return false
	}
	s.byPath[path] = append(obs, o)
	return true
}

// forget removes every observer at addr (an RST came from it).
func (s *coapObservers) forget(addr string) {
	if s == nil {
		return
	}
	for path, l := range s.byPath {
		var keep []*coapObserver
		for _, o := range l {
			if o.addr != addr && !o.gone() {
				keep = append(keep, o)
			}
		}
		s.byPath[path] = keep
	}
}

// acked notes the ACK of a confirmable notification.
func (s *coapObservers) acked(addr string, mid int32) {
	if s == nil {
		return
	}
	for _, l := range s.byPath {
		for _, o := range l {
			if o.addr == addr && o.pending == mid {
				o.pending, o.missed = -1, 0
			}
		}
	}
}

// coap.notify(path, payload[, code[, content_format]]) -> how many
// observers were sent the notification (a NON, each coapConfirmEvery-th
// a CON).
func coapNotify(L *lua.LState) int {
	d := devOf(L)
	path := L.CheckString(1)
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	payload := []byte(L.CheckString(2))
	code := codes.Content
	if v := L.Get(3); v != lua.LNil {
		c, err := coap.ParseCode(v.String())
		if err != nil {
			L.ArgError(3, err.Error())
		}
		code = c
	}
	cf := -1
	if v, ok := L.Get(4).(lua.LNumber); ok {
		cf = int(v)
	}
	if d.coapObs == nil {
		L.Push(lua.LNumber(0))
		return 1
	}
	sent := 0
	var keep []*coapObserver
	for _, o := range d.coapObs.byPath[path] {
		if o.gone() {
			continue // its association ended: it observes no more
		}
		o.seq++
		m := coapAnswer(&coap.Message{Type: coap.NON, Token: o.token}, code, payload, cf, true, o.seq&0xffffff)
		if o.seq%coapConfirmEvery == 0 {
			if o.pending >= 0 {
				if o.missed++; o.missed >= coapMaxMissed {
					// gone: forgotten, and its DTLS association, which
					// nothing would end before the listener, with it
					if o.c != nil {
						o.c.shut(true)
					}
					continue
				}
			}
			m.Type = coap.CON
			o.pending = m.MessageID
		}
		keep = append(keep, o)
		wire, _ := coap.Encode(m)
		if o.c != nil {
			// a record of the association, shown and recorded with it
			if o.c.send(L, wire) == "" {
				sent++
			}
			continue
		}
		if _, err := o.pc.Write(wire); err == nil {
			sent++
			// A notification is an exchange of its own, as each request
			// a datagram listener serves is.
			w := d.env.openWire(addrString(o.pc.LocalAddr()), addrString(o.pc.to), o.tr, event.Server)
			w.sent(wire)
			w.close(true, nil)
		}
	}
	d.coapObs.byPath[path] = keep
	L.Push(lua.LNumber(sent))
	return 1
}

// respond(req, code, payload[, content_format]) -> the response's bytes.
func coapRespond(L *lua.LState) int {
	t := L.CheckTable(1)
	ud, ok := t.RawGetString("_msg").(*lua.LUserData)
	m, ok2 := ud.Value.(*coap.Message)
	if !ok || !ok2 {
		L.ArgError(1, "a request expected")
	}
	code, err := coap.ParseCode(L.CheckAny(2).String())
	if err != nil {
		L.RaiseError("coap.serve: a route returned %s", err)
	}
	payload := ""
	if v := L.Get(3); v != lua.LNil {
		payload = v.String()
	}
	cf := -1
	if v, ok := L.Get(4).(lua.LNumber); ok {
		cf = int(v)
	}
	obs := lua.LVAsBool(t.RawGetString("observe")) && code>>5 == 2
	L.Push(lua.LString(coapReplyObs(m, code, []byte(payload), cf, obs, 1)))
	return 1
}

// coap.serve(addr[, opts], routes) -> listener | nil, err. routes maps
// "METHOD /path", "/path" or "*" to a payload string or a function(req)
// returning a payload (2.05 Content) or code, payload[, content_format].
func coapServe(L *lua.LState) int {
	opts, routes := serveArgs(L)
	addr := L.CheckString(1)
	if !strings.Contains(addr, "://") {
		addr = "udp://" + addr
	}
	d := devOf(L)
	wait := lua.LValue(lua.LNumber(0)) // UDP: the datagram that started the handler
	if strings.HasPrefix(addr, "dtls://") || strings.HasPrefix(d.env.Listen, "dtls://") {
		wait = lua.LNil // DTLS: the association's records, one after another
	}
	st := L.CreateTable(0, 1)
	return serveListen(L, d, coapServeChunk.function(d.L), addr, listenOpts(L, opts), goCodec{proto.Raw}, st,
		L.NewFunction(coapParse), L.NewFunction(coapRespond), routes, wait, L.NewFunction(httpOpen), st)
}

// coap.observe(url | opts, handler) -> handle | nil, err. It registers
// (GET with Observe 0), calls handler(response) with the first answer and
// each notification after it, each call its own coroutine, until
// handle:stop(), the server's last notification, or the device's end. The
// handle keeps the device alive meanwhile.
func coapObserve(L *lua.LState) int {
	d := devOf(L)
	fn := L.CheckFunction(2)
	rq, errMsg := coapPrepare(L, d, true)
	if rq == nil {
		return pushErr(L, errMsg)
	}
	rq.typ = coap.CON
	origin := "in coap.observe handler started at " + where(L)
	t := d.block(L, "coap.observe")
	go func() {
		fail := func(err error) {
			d.post(func() {
				d.failed()
				d.wake(t, lua.LNil, lua.LString(err.Error()))
			})
		}
		nc, err := d.coapDial(rq.a, &rq.o)
		if err != nil {
			fail(err)
			return
		}
		wl, st := nc.w, nc.st
		deadline := time.Now().Add(rq.timeout)
		m := *rq.msg
		m.Type, m.MessageID = coap.CON, int32(randUint(1<<16))
		first, err := coapOne(nc, &m, deadline, rq.retry)
		var body []byte
		if err == nil {
			st.MsgsRecv.Add(1)
			body, err = coapRest(nc, rq, first, deadline)
		}
		if err == nil {
			if _, oerr := first.Options.Observe(); oerr != nil {
				err = fmt.Errorf("the server does not offer %s to observe (%s, no Observe option)", rq.path, coap.CodeString(first.Code))
			}
		}
		if err != nil {
			nc.Close()
			fail(err)
			return
		}
		var h *handle
		if !d.post(func() {
			h = &handle{d: d, onStop: func() {
				// deregister (a GET with Observe 1), so the server stops now
				dm := m
				dm.Type, dm.MessageID = coap.NON, int32(randUint(1<<16))
				dm.Options, _ = m.Options.Clone()
				b := make([]byte, 4)
				dm.Options, _, _ = dm.Options.SetObserve(b, 1)
				if w, err := coap.Encode(&dm); err == nil {
					nc.Write(w)
				}
				nc.Close()
			}}
			u := d.newHandle(d.L, h)
			d.spawn(fn, origin, coapResponse(d.L, first, body))
			d.wake(t, u)
		}) {
			nc.Close()
			return
		}
		// notifications until the socket is closed (stop, the device's end)
		nc.SetReadDeadline(time.Time{})
		b := make([]byte, 64<<10)
		for {
			n, err := nc.Read(b)
			if err != nil {
				wl.close(false, nil) // reported already when stop closed it
				d.post(func() { h.stop() })
				return
			}
			r, err := coap.Decode(append([]byte{}, b[:n]...))
			if err != nil || string(r.Token) != string(m.Token) {
				continue
			}
			if r.Type == coap.CON {
				ack, _ := coap.Encode(&coap.Message{Type: coap.ACK, Code: codes.Empty, MessageID: r.MessageID})
				nc.Write(ack)
			}
			_, oerr := r.Options.Observe()
			last := oerr != nil // a response without Observe ends the observation
			st.MsgsRecv.Add(1)
			body, err := coapRest(nc, rq, r, time.Now().Add(rq.timeout))
			nc.SetReadDeadline(time.Time{}) // coapOne's, for the blocks
			// a notification whose blocks failed is lost; the next may come whole
			if err != nil {
				d.post(func() {
					d.failed()
					d.env.write(d.env.Stderr, fmt.Sprintf("device %d: warning: coap.observe %s: a notification's blocks: %s\n", d.ID, rq.path, err))
				})
				continue
			}
			if !d.post(func() {
				if !h.stopped {
					d.spawn(fn, origin, coapResponse(d.L, r, body))
					if last {
						h.stop()
					}
				}
			}) || last {
				if last {
					nc.Close()
				}
				return
			}
		}
	}()
	return L.Yield()
}
