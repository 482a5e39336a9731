package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/pipe"
	"github.com/wirecat-dev/wirecat/proto"
)

// conn is a connection as a device script sees it. Its fields belong to the
// device goroutine; a read goroutine exists only while a recv waits for bytes.
type conn struct {
	d      *Device
	id     uint64
	nc     net.Conn
	tr     string // transport for events
	role   event.Side
	local  string
	remote string
	packet bool
	codec  codec
	buf    []byte   // stream bytes not yet made into messages
	msgs   [][]byte // packet: messages decoded, not yet received
	rerr   error    // the read side ended with this (io.EOF: peer closed)
	// reading: a read goroutine is in flight; its result arrives as an event.
	reading bool
	// pushed: a datagram listener hands this conn its sender's datagrams;
	// it has no read goroutine of its own.
	pushed bool
	onShut func()
	closed bool
	waiter *task
	until  []byte // recv_until's text, nil for recv
	wtime  time.Duration
	rbuf   []byte   // a stream's read buffer, reused while reads are small
	req    *request // the conn:request whose reply the waiting recv is
}

const readSize = 4 << 10

// smallRead is the most a stream read may bring for its buffer to be kept.
const smallRead = 512

func (d *Device) newConn(nc net.Conn, tr string, role event.Side, packet bool, c codec) *conn {
	cn := &conn{d: d, id: pipe.NextID(), nc: nc, tr: tr, role: role, packet: packet, codec: c,
		local: addrString(nc.LocalAddr()), remote: addrString(nc.RemoteAddr()), wtime: d.env.WriteTimeout}
	if cn.wtime <= 0 {
		cn.wtime = 10 * time.Second
	}
	d.conns[cn] = struct{}{}
	st := d.env.stats()
	st.Conns.Add(1)
	st.LastConn.Store(time.Now().UnixNano())
	if !d.everConnected {
		d.everConnected = true
		st.DevicesConnected.Add(1)
	}
	if d.open++; d.open == 1 {
		st.Up.Add(1)
	}
	d.env.emit(&event.Event{Kind: event.Open, Time: time.Now(), Conn: cn.id, Transport: tr, Local: cn.local, Remote: cn.remote, Role: role})
	return cn
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func (d *Device) maxFrame() int {
	if d.env.MaxFrame > 0 {
		return d.env.MaxFrame
	}
	return 1 << 20
}

// next returns the next whole message, if one is buffered.
func (c *conn) next(L *lua.LState) ([]byte, bool, error) {
	if c.packet {
		if len(c.msgs) == 0 {
			return nil, false, nil
		}
		m := c.msgs[0]
		c.msgs = c.msgs[1:]
		return m, true, nil
	}
	if c.until != nil {
		if i := bytes.Index(c.buf, c.until); i >= 0 {
			n := i + len(c.until)
			m := bytes.Clone(c.buf[:n])
			c.consume(n)
			return m, true, nil
		}
		if len(c.buf) > c.d.maxFrame() {
			return nil, false, fmt.Errorf("%q not found in %d bytes (max frame)", c.until, len(c.buf))
		}
		if c.rerr != nil && len(c.buf) > 0 {
			m := c.buf
			c.buf = nil
			return m, true, nil
		}
		return nil, false, nil
	}
	for len(c.buf) > 0 {
		msg, n, err := c.codec.decode(L, c.buf)
		if err != nil {
			return nil, false, err
		}
		if n == 0 {
			if len(c.buf) > c.d.maxFrame() {
				return nil, false, fmt.Errorf("message larger than the maximum of %d bytes", c.d.maxFrame())
			}
			if c.rerr != nil {
				rest := c.buf
				c.buf = nil
				m, err := c.codec.finish(L, rest)
				return m, m != nil, err
			}
			return nil, false, nil
		}
		if msg == nil { // n bytes of filler: no message
			c.consume(n)
			continue
		}
		m := append([]byte{}, msg...) // decoders may alias (and rewrite) c.buf
		c.consume(n)
		return m, true, nil
	}
	return nil, false, nil
}

func (c *conn) consume(n int) {
	c.buf = c.buf[n:]
	if len(c.buf) == 0 {
		c.buf = nil // let a big buffer go
	}
}

func (c *conn) received(m []byte) {
	st := c.d.env.stats()
	st.MsgsRecv.Add(1)
	c.d.env.emit(&event.Event{Kind: event.Data, Time: time.Now(), Conn: c.id, Transport: c.tr, Local: c.local,
		Remote: c.remote, Role: c.role, From: c.role.Other(), Data: m})
}

// startRead launches the one read goroutine the connection may have.
func (c *conn) startRead() {
	if c.reading || c.pushed || c.rerr != nil || c.closed {
		return
	}
	c.reading = true
	d := c.d
	size := readSize
	if c.packet {
		size = 64 << 10
	}
	b := c.rbuf
	c.rbuf = nil
	go func() {
		if b == nil {
			b = make([]byte, size)
		}
		n, err := c.nc.Read(b)
		d.post(func() { c.onRead(b[:n], err) })
	}()
}

func (c *conn) onRead(b []byte, err error) {
	c.reading = false
	if c.closed {
		return
	}
	if len(b) > 0 {
		c.d.env.stats().BytesRecv.Add(int64(len(b)))
		if c.packet {
			msgs, derr := c.codec.split(c.d.L, b)
			c.msgs = append(c.msgs, msgs...)
			if derr != nil && err == nil {
				err = derr
			}
		} else if len(b) <= smallRead {
			// A small read (a command, an answer) is copied and its buffer
			// kept for the next: a device exchanging short messages makes
			// a few bytes of garbage per read, not a buffer.
			c.buf = append(c.buf, b...)
			c.rbuf = b[:cap(b)]
		} else if len(c.buf) == 0 {
			c.buf = b // the read's own buffer: nothing to copy
		} else {
			c.buf = append(c.buf, b...)
		}
	}
	if err != nil {
		c.rerr = err
		if r := readErr(err); r != "closed" && r != "timeout" && r != "idle" { // reset, not a goodbye
			c.d.failed()
		}
	}
	c.serve(c.d.L)
}

// serve hands a buffered message (or the end) to the waiting task, or reads on.
func (c *conn) serve(L *lua.LState) {
	t := c.waiter
	if t == nil {
		return
	}
	m, ok, err := c.next(L)
	switch {
	case err != nil:
		c.answer(lua.LNil, lua.LString(err.Error()))
		c.fail(err)
	case ok:
		c.received(m)
		c.answer(lua.LString(m))
	case c.rerr != nil:
		c.answer(lua.LNil, lua.LString(readErr(c.rerr)))
	default:
		c.startRead()
	}
}

func (c *conn) answer(vals ...lua.LValue) {
	t := c.waiter
	c.waiter = nil
	c.until = nil
	if c.req != nil {
		err := ""
		if len(vals) == 2 && vals[0] == lua.LNil {
			err = vals[1].String()
		}
		c.settle(err)
	}
	c.d.wake(t, vals...)
}

// settle records the outcome of the conn:request waiting for its reply,
// if one is: err is "" for a reply.
func (c *conn) settle(err string) {
	if r := c.req; r != nil {
		c.req = nil
		if c.d.ctx.Err() == nil { // a device being stopped measures nothing
			r.done(c.d.env.stats(), err)
		}
	}
}

func readErr(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return "closed"
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "timeout"
	}
	if errors.Is(err, link.ErrIdle) {
		return "idle" // a DTLS listener ended the silent association (opts.idle)
	}
	return link.Cause(err)
}

// fail ends a connection that broke its framing.
func (c *conn) fail(err error) {
	c.d.failed()
	c.d.env.emit(&event.Event{Kind: event.Error, Time: time.Now(), Conn: c.id, Transport: c.tr, Local: c.local,
		Remote: c.remote, Role: c.role, Err: err})
	c.rerr = err
	c.shut(false)
}

// shut closes the connection; a task waiting on it gets nil, "closed".
func (c *conn) shut(byScript bool) {
	if c.closed {
		return
	}
	c.closed = true
	c.nc.Close()
	delete(c.d.conns, c)
	if c.d.open--; c.d.open == 0 {
		c.d.env.stats().Up.Add(-1)
	}
	if c.role == event.Client {
		c.d.lost = true // the device's next dial is a reconnect
	}
	if c.onShut != nil {
		c.onShut()
	}
	from := c.role.Other()
	if byScript {
		from = c.role
	}
	e := &event.Event{Kind: event.Close, Time: time.Now(), Conn: c.id, Transport: c.tr, Local: c.local,
		Remote: c.remote, Role: c.role, From: from}
	pipe.CloseFrame(e, c.nc) // a WebSocket's close code and reason
	c.d.env.emit(e)
	if c.waiter != nil {
		c.answer(lua.LNil, lua.LString("closed"))
	}
}

func checkConn(L *lua.LState) *conn { return checkSelf[*conn](L, "connection") }

// checkSelf is the method receiver (argument 1) as a T, else an error
// naming what was expected.
func checkSelf[T any](L *lua.LState, what string) T {
	v, ok := L.CheckUserData(1).Value.(T)
	if !ok {
		L.ArgError(1, what+" expected")
	}
	return v
}

var connMethods = map[string]lua.LGFunction{
	"send":       connSend,
	"recv":       connRecv,
	"recv_until": connRecvUntil,
	"request":    connRequest,
	"close": func(L *lua.LState) int {
		checkConn(L).shut(true)
		return 0
	},
	"peer": func(L *lua.LState) int {
		L.Push(lua.LString(checkConn(L).remote))
		return 1
	},
	"local_addr": func(L *lua.LState) int {
		L.Push(lua.LString(checkConn(L).local))
		return 1
	},
	"id": func(L *lua.LState) int {
		L.Push(lua.LNumber(checkConn(L).id))
		return 1
	},
}

// conn:send(msg) -> true, or nil, err. The message is framed and written
// before send returns; a peer that does not drain it fails it after the
// write timeout.
func connSend(L *lua.LState) int {
	c := checkConn(L)
	if err := c.send(L, []byte(L.CheckString(2))); err != "" {
		return pushErr(L, err)
	}
	L.Push(lua.LTrue)
	return 1
}

// send frames and writes msg; the error is what the script is told.
func (c *conn) send(L *lua.LState, msg []byte) string {
	if c.closed {
		return "closed"
	}
	wire, err := c.codec.encode(L, msg)
	if err != nil {
		return err.Error()
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.wtime))
	if _, err := c.nc.Write(wire); err != nil {
		c.d.failed()
		return readErr(err)
	}
	st := c.d.env.stats()
	st.MsgsSent.Add(1)
	st.BytesSent.Add(int64(len(wire)))
	c.d.env.emit(&event.Event{Kind: event.Data, Time: time.Now(), Conn: c.id, Transport: c.tr, Local: c.local,
		Remote: c.remote, Role: c.role, From: c.role, Data: msg})
	return ""
}

// defaultRequestTimeout is how long conn:request waits for its reply
// unless told: a request is a question expected to be answered, and
// one never answered should count as a timeout, not hang the device.
const defaultRequestTimeout = 10.0

// conn:request(msg [, timeout [, name]]) or conn:request(msg, {timeout=,
// name=}) -> reply, or nil, "timeout" | "closed" | err. It sends msg,
// waits for the next message and records the round trip in the timing
// name ("rtt"), counting NAME.total, NAME.timeouts and NAME.failed.
func connRequest(L *lua.LState) int {
	c := checkConn(L)
	msg := []byte(L.CheckString(2))
	timeout, name := defaultRequestTimeout, "rtt"
	switch v := L.Get(3).(type) {
	case *lua.LTable:
		timeout = optNumber(v, "timeout", timeout)
		if s, ok := optString(v, "name"); ok {
			name = s
		}
	case lua.LNumber:
		timeout = float64(v)
		name = L.OptString(4, name)
	case *lua.LNilType:
		name = L.OptString(4, name)
	default:
		L.ArgError(3, "a timeout in seconds or an options table expected")
	}
	if !(timeout > 0) {
		L.ArgError(3, "the timeout must be more than 0 seconds")
	}
	if c.waiter != nil {
		L.RaiseError("connection %d already has a recv waiting", c.id)
	}
	st := c.d.env.stats()
	rm, err := st.requestMetrics(name)
	if err != nil {
		L.RaiseError("conn:request: %v", err)
	}
	rm.total.Add(1)
	start := time.Now() // before the write: a peer may answer before send returns
	if err := c.send(L, msg); err != "" {
		rm.failed.Add(1)
		return pushErr(L, err)
	}
	c.req = &request{start: start, rm: rm}
	return c.recvFor(L, nil, timeout)
}

func pushErr(L *lua.LState, msg string) int {
	L.Push(lua.LNil)
	L.Push(lua.LString(msg))
	return 2
}

// conn:recv([timeout]) -> msg, or nil, "timeout" | "closed" | err.
func connRecv(L *lua.LState) int {
	c := checkConn(L)
	return c.recv(L, nil, 2)
}

// conn:recv_until(text[, timeout]) -> bytes up to and including text.
func connRecvUntil(L *lua.LState) int {
	c := checkConn(L)
	text := L.CheckString(2)
	if text == "" {
		L.ArgError(2, "empty text")
	}
	if c.packet {
		L.RaiseError("recv_until works on stream connections only")
	}
	return c.recv(L, []byte(text), 3)
}

func (c *conn) recv(L *lua.LState, until []byte, tpos int) int {
	timeout := -1.0
	if v := L.Get(tpos); v != lua.LNil {
		timeout = float64(L.CheckNumber(tpos))
	}
	if c.waiter != nil {
		L.RaiseError("connection %d already has a recv waiting", c.id)
	}
	return c.recvFor(L, until, timeout)
}

// recvFor is recv with its timeout in seconds (-1: none). A request's
// reply is settled on every way out.
func (c *conn) recvFor(L *lua.LState, until []byte, timeout float64) int {
	fail := func(err string) int {
		c.until = nil
		c.settle(err)
		return pushErr(L, err)
	}
	if c.closed {
		return fail("closed")
	}
	c.until = until
	m, ok, err := c.next(L)
	if err != nil {
		c.fail(err)
		return fail(err.Error())
	}
	if ok {
		c.until = nil
		c.received(m)
		c.settle("")
		L.Push(lua.LString(m))
		return 1
	}
	if c.rerr != nil {
		return fail(readErr(c.rerr))
	}
	if timeout == 0 {
		return fail("timeout")
	}
	d := c.d
	t := d.block(L, "recv")
	c.waiter = t
	if timeout > 0 {
		t.wait = d.addTimer(timeout, func() {
			t.wait = nil
			if c.waiter == t {
				c.answer(lua.LNil, lua.LString("timeout"))
			}
		})
	}
	c.startRead()
	return L.Yield()
}

// connectRetry reads net.connect's opts.retry (other modules give "retry"
// their own meaning: a resend interval).
func connectRetry(L *lua.LState, t *lua.LTable, o *connOpts) {
	if t == nil {
		return
	}
	bad := func() { L.ArgError(2, "retry: want a count of retries (0, 5...) or \"forever\"") }
	switch v := t.RawGetString("retry").(type) {
	case *lua.LNilType:
	case lua.LNumber:
		if v < 0 || float64(v) != float64(int(v)) {
			bad()
		}
		o.retry = int(v)
	case lua.LString:
		if v != "forever" {
			bad()
		}
		o.retry = link.RetryForever
	default:
		bad()
	}
}

// dialRetry dials a, again after a backoff while opts.retry allows and the
// failure may mend. A dial slot is held per attempt, not across the waits.
func (d *Device) dialRetry(ctx context.Context, a link.Addr, o *connOpts, slots chan struct{}) (net.Conn, error) {
	for attempt := 1; ; attempt++ {
		var nc net.Conn
		var err error
		select {
		case slots <- struct{}{}:
			if attempt > 1 {
				d.env.stats().Reconnects.Add(1)
			}
			nc, err = d.dial(ctx, a, &o.link)
			<-slots
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err == nil || ctx.Err() != nil || o.retry == 0 || !link.Retryable(err) || o.retry > 0 && attempt > o.retry {
			if err != nil && attempt > 1 {
				err = &link.RetryError{Attempts: attempt, Err: err}
			}
			return nc, err
		}
		wait := o.link.NextBackoff(attempt)
		if d.env.Verbose {
			cause := err
			if oe, ok := err.(*link.OpError); ok {
				cause = oe.Err
			}
			d.env.write(d.env.Stderr, fmt.Sprintf("device %d: debug: net.connect %s: attempt %d failed: %s; trying again in %v\n",
				d.ID, a, attempt, link.Cause(cause), wait.Round(time.Millisecond)))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, &link.RetryError{Attempts: attempt, Err: err}
		case <-timer.C:
		}
	}
}

// proxyFor sets the proxy of a net.connect to a: opts.proxy, else the
// run's default.
func (d *Device) proxyFor(a link.Addr, o *connOpts) error {
	switch {
	case o.proxy == "none":
		return nil
	case o.proxy != "":
		if !a.OverTCP() {
			return fmt.Errorf("proxy carries TCP, TLS and WebSocket connections, not %s", a.Scheme)
		}
		p, err := link.ParseProxy(o.proxy)
		o.link.Proxy = p
		return err
	case d.env.Dial.Proxy != nil:
		p, err := d.env.Dial.Proxy(a)
		o.link.Proxy = p
		return err
	}
	return nil
}

// DialDefaults are what `simulate -w/-s` make the default of every
// net.connect (its opts.timeout and opts.source win).
type DialDefaults struct {
	Timeout time.Duration // 0: 10s
	Source  string        // ADDR[:PORT]; "": the system's choice
	// Sources, when set, overrides Source: device id i connects from
	// Sources[(i-1) mod len], so a fleet spreads over several local
	// addresses (simulate -s LIST or a range).
	Sources []string
	Retry   int // opts.retry's default: link.Options.Retry
	// Proxy picks the proxy of a net.connect (--proxy or the environment);
	// nil: none. opts.proxy wins.
	Proxy func(link.Addr) (*link.Proxy, error)
}

// connOpts are the options of net.connect and net.listen.
type connOpts struct {
	codec   codec
	timeout time.Duration
	link    link.Options
	retry   int    // retries of net.connect; link.RetryForever: until it connects
	proxy   string // opts.proxy: a URL, or "none"; "": the default
}

func (d *Device) parseOpts(L *lua.LState, t *lua.LTable) connOpts {
	o := connOpts{timeout: 10 * time.Second}
	if d.env.Dial.Timeout > 0 {
		o.timeout = d.env.Dial.Timeout
	}
	o.link.Source = d.env.Dial.Source
	if n := len(d.env.Dial.Sources); n > 0 {
		o.link.Source = d.env.Dial.Sources[((d.ID-1)%n+n)%n] // an id below 1 (not a fleet's) still picks one
	}
	o.link.TLS = d.env.TLS
	o.link.WS = d.env.WS
	o.retry = d.env.Dial.Retry
	frame := lua.LValue(lua.LNil)
	if t != nil {
		frame = t.RawGetString("frame")
		if v, ok := t.RawGetString("timeout").(lua.LNumber); ok {
			o.timeout = dur(float64(v))
		}
		tls := &o.link.TLS
		if v := t.RawGetString("insecure"); v != lua.LNil {
			tls.Insecure = lua.LVAsBool(v)
		}
		for k, p := range map[string]*string{"pin": &tls.Pin, "ca": &tls.CA, "sni": &tls.SNI, "cert": &tls.Cert, "key": &tls.Key,
			"psk": &tls.PSK, "psk_file": &tls.PSKFile, "psk_identity": &tls.PSKIdentity} {
			if v, ok := t.RawGetString(k).(lua.LString); ok {
				*p = string(v)
			}
		}
		if v, ok := t.RawGetString("proxy").(lua.LString); ok { // like --proxy
			if v != "none" {
				if _, err := link.ParseProxy(string(v)); err != nil {
					L.ArgError(2, "proxy: "+err.Error())
				}
			}
			o.proxy = string(v)
		}
		parseWSOpts(L, t, &o.link.WS)
		if v, ok := t.RawGetString("broadcast").(lua.LBool); ok {
			o.link.Broadcast = bool(v)
		}
		if v, ok := t.RawGetString("source").(lua.LString); ok { // like -s/--source
			if _, _, err := link.ParseSource(string(v)); err != nil {
				L.ArgError(2, "source: "+err.Error())
			}
			o.link.Source = string(v)
		}
	}
	switch f := frame.(type) {
	case *lua.LTable:
		c, err := tableCodec(f, "framer")
		if err != nil {
			L.ArgError(2, err.Error())
		}
		o.codec = c
	case lua.LString:
		c, err := d.env.framing(string(f))
		if err != nil {
			L.ArgError(2, err.Error())
		}
		o.codec = c
	case *lua.LNilType:
		spec := d.env.Frame
		if spec == "" {
			spec = d.prog.Frame
		}
		c, err := d.env.framing(spec)
		if err != nil {
			L.RaiseError("%v", err)
		}
		o.codec = c
	default:
		L.ArgError(2, "frame must be a framing spec or a table with decode and encode")
	}
	return o
}

// framing resolves a spec once per run: every device shares the framer.
func (e *Env) framing(spec string) (codec, error) {
	if spec == "" || spec == "raw" {
		return goCodec{proto.Raw}, nil
	}
	e.frMu.Lock()
	defer e.frMu.Unlock()
	if f, ok := e.framer[spec]; ok {
		return goCodec{f}, nil
	}
	load := e.Load
	if load == nil {
		load = LoadFunc
	}
	f, err := proto.Parse(spec, load)
	if err != nil {
		return nil, err
	}
	if e.framer == nil {
		e.framer = map[string]proto.Framer{}
	}
	e.framer[spec] = f
	return goCodec{f}, nil
}

// connectSpec is where a connect call dials: --connect over the address
// in argument 1, over the script's TARGET.
func (d *Device) connectSpec(L *lua.LState) string {
	spec := ""
	switch v := L.Get(1).(type) {
	case lua.LString:
		spec = string(v)
	case *lua.LNilType:
	default:
		L.ArgError(1, "address expected")
	}
	if d.env.Connect != "" {
		spec = d.env.Connect
	}
	if spec == "" {
		spec = d.env.Target
	}
	return spec
}

// net.connect(addr[, opts]) -> conn, or nil, err.
func netConnect(L *lua.LState) int {
	d := devOf(L)
	spec := d.connectSpec(L)
	if spec == "" {
		return pushErr(L, "no address to connect to")
	}
	a, err := link.Parse(spec, false)
	if err != nil {
		return pushErr(L, err.Error())
	}
	opts := L.OptTable(2, nil)
	o := d.parseOpts(L, opts)
	connectRetry(L, opts, &o)
	if err := d.proxyFor(a, &o); err != nil {
		return pushErr(L, err.Error())
	}
	t := d.block(L, "net.connect")
	d.dialing()
	ctx, cancel := context.WithTimeout(d.ctx, o.timeout)
	if o.retry != 0 {
		// The timeout bounds each attempt; the retries go on until the
		// device ends.
		cancel()
		ctx, cancel = context.WithCancel(d.ctx)
		o.link.Timeout = o.timeout
	}
	slots := d.env.dialSlots()
	d.goDialThen(o.retry != 0, func() (net.Conn, error) {
		defer cancel()
		return d.dialRetry(ctx, a, &o, slots)
	}, func(nc net.Conn, err error) {
		if err != nil {
			d.wake(t, lua.LNil, lua.LString(link.Cause(err)))
			return
		}
		c := d.newConn(nc, a.Transport(), event.Client, a.Datagram() || a.IsWebSocket(), o.codec)
		d.wake(t, c.userdata(d.L))
	})
	return L.Yield()
}

func (c *conn) userdata(L *lua.LState) *lua.LUserData {
	u := L.NewUserData()
	u.Value = c
	u.Metatable = libs().conn
	return u
}

// listener is a net.listen socket. On a stream socket each accepted peer
// runs the handler as its own coroutine, and is closed when it returns; on
// a datagram socket each sender does, the first time one of its datagrams
// arrives.
type listener struct {
	d       *Device
	ln      net.Listener   // stream transports
	pc      net.PacketConn // datagram transports
	peers   map[string]*conn
	addr    link.Addr
	handler *lua.LFunction
	opts    connOpts
	origin  string
	closed  bool
}

var listenerMethods = map[string]lua.LGFunction{
	"close": func(L *lua.LState) int {
		checkListener(L).close()
		return 0
	},
	"addr": func(L *lua.LState) int {
		l := checkListener(L)
		if l.pc != nil {
			L.Push(lua.LString(l.pc.LocalAddr().String()))
		} else {
			L.Push(lua.LString(l.ln.Addr().String()))
		}
		return 1
	},
}

func checkListener(L *lua.LState) *listener { return checkSelf[*listener](L, "listener") }

func (l *listener) close() {
	if l.closed {
		return
	}
	l.closed = true
	if l.pc != nil {
		l.pc.Close()
		for _, c := range l.peers { // they share the socket
			c.shut(true)
		}
	} else {
		l.ln.Close()
	}
	delete(l.d.lsts, l)
	l.d.keep--
}

// net.listen(addr[, opts], handler) -> listener, or nil, err.
func netListen(L *lua.LState) int {
	d := devOf(L)
	spec := L.CheckString(1)
	var opts *lua.LTable
	var handler *lua.LFunction
	if L.GetTop() >= 3 {
		opts = L.OptTable(2, nil)
		handler = L.CheckFunction(3)
	} else {
		handler = L.CheckFunction(2)
	}
	if d.env.Listen != "" {
		// `--listen pty:/tmp/ttyV%d`: each device its own pty.
		spec = strings.ReplaceAll(d.env.Listen, "%d", strconv.Itoa(d.ID))
	}
	a, err := link.Parse(spec, false)
	if err != nil {
		return pushErr(L, err.Error())
	}
	o := d.parseOpts(L, opts)
	if a.IsTTY() {
		// Where the pty is: the host program under test needs its name.
		o.link.Log = func(format string, args ...any) {
			d.env.write(d.env.Stderr, fmt.Sprintf("wirecat: device %d: "+format+"\n", append([]any{d.ID}, args...)...))
		}
	}
	if d.listenCodec != nil {
		o.codec = d.listenCodec
	}
	if a.Scheme == "dtls" {
		o.link.DTLSIdle = dtlsIdle(L, opts)
	}
	l := &listener{d: d, addr: a, handler: handler, opts: o, origin: "in net.listen handler started at " + where(L)}
	if a.Packet() {
		pc, err := link.ListenPacket(d.ctx, a, &o.link)
		if err != nil {
			return pushErr(L, link.Cause(err))
		}
		l.pc, l.peers = pc, map[string]*conn{}
		go l.readDatagrams()
	} else {
		ln, err := link.Listen(d.ctx, a, &o.link)
		if err != nil {
			return pushErr(L, link.Cause(err))
		}
		l.ln = ln
		go l.accept()
	}
	d.lsts[l] = struct{}{}
	d.keep++
	u := L.NewUserData()
	u.Value = l
	u.Metatable = libs().lst
	L.Push(u)
	return 1
}

// dtlsIdle is how long a DTLS listener keeps an association nothing
// crosses: opts.idle seconds, else link.DefaultDTLSIdle as `listen -k`.
// UDP has no end: without it a client that vanished without close_notify
// would hold its association (and its handler) for good. Other listeners
// leave opts.idle alone (http.serve's is its keep-alive).
func dtlsIdle(L *lua.LState, opts *lua.LTable) time.Duration {
	if opts == nil {
		return link.DefaultDTLSIdle
	}
	switch v := opts.RawGetString("idle").(type) {
	case *lua.LNilType:
		return link.DefaultDTLSIdle
	case lua.LNumber:
		// Up to a year: the point is an end; a larger figure would overflow.
		if f := float64(v); f > 0 && f <= 365*24*3600 {
			return dur(f)
		}
	}
	L.ArgError(2, "idle: seconds an association may stay silent, more than 0")
	return 0
}

// broke closes a listener whose socket failed under it (not by close).
func (l *listener) broke() {
	if !l.closed {
		l.d.failed()
		l.close()
	}
}

// accept runs on its own goroutine while the listener is open.
func (l *listener) accept() {
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			l.d.post(l.broke)
			return
		}
		posted := l.d.post(func() {
			if l.closed {
				nc.Close()
				return
			}
			c := l.d.newConn(nc, l.addr.Transport(), event.Server, l.addr.Datagram() || l.addr.IsWebSocket(), l.opts.codec)
			t := l.d.spawn(l.handler, l.origin, c.userdata(l.d.L))
			// A handler that returns is done with its peer, as a datagram
			// handler is with its sender: hang up rather than hold the
			// socket until the device ends.
			t.onDone = func() { c.shut(true) }
		})
		if !posted {
			nc.Close()
			return
		}
	}
}

// maxQueued bounds the datagrams a sender may have waiting for its handler;
// more are dropped, as a full socket buffer would.
const maxQueued = 256

// readDatagrams runs on its own goroutine while the listener is open.
func (l *listener) readDatagrams() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := l.pc.ReadFrom(buf)
		if err != nil {
			l.d.post(l.broke)
			return
		}
		b := bytes.Clone(buf[:n])
		if !l.d.post(func() { l.datagram(from, b) }) {
			return
		}
	}
}

// datagram hands b to its sender's conn, starting a handler for a new sender.
func (l *listener) datagram(from net.Addr, b []byte) {
	if l.closed {
		return
	}
	key := addrString(from)
	c := l.peers[key]
	if c == nil {
		c = l.d.newConn(&peerConn{pc: l.pc, to: from}, l.addr.Transport(), event.Server, true, l.opts.codec)
		c.pushed = true
		c.onShut = func() { delete(l.peers, key) }
		l.peers[key] = c
		l.serveDatagrams(c)
	}
	if len(c.msgs) >= maxQueued {
		return
	}
	c.onRead(b, nil)
}

// serveDatagrams runs the handler for a sender. When it returns, the sender
// is forgotten (its next datagram starts a new handler), unless datagrams
// it has not received are waiting: then a new handler starts for them.
func (l *listener) serveDatagrams(c *conn) {
	t := l.d.spawn(l.handler, l.origin, c.userdata(l.d.L))
	t.onDone = func() {
		switch {
		case c.closed:
		case len(c.msgs) > 0 && !l.closed:
			l.serveDatagrams(c)
		default:
			c.shut(true)
		}
	}
}

// peerConn is one sender of a datagram listener as a net.Conn: writes go
// to it through the listener's socket. Reads come from the listener.
type peerConn struct {
	pc net.PacketConn
	to net.Addr
}

func (p *peerConn) Read([]byte) (int, error)           { return 0, net.ErrClosed }
func (p *peerConn) Write(b []byte) (int, error)        { return p.pc.WriteTo(b, p.to) }
func (p *peerConn) Close() error                       { return nil } // the socket is the listener's
func (p *peerConn) LocalAddr() net.Addr                { return p.pc.LocalAddr() }
func (p *peerConn) RemoteAddr() net.Addr               { return p.to }
func (p *peerConn) SetDeadline(time.Time) error        { return nil }
func (p *peerConn) SetReadDeadline(time.Time) error    { return nil }
func (p *peerConn) SetWriteDeadline(t time.Time) error { return p.pc.SetWriteDeadline(t) }
