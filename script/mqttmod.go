package script

import (
	"context"
	"fmt"
	"net"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/luamod/mqtt"
	"github.com/wirecat-dev/wirecat/metrics"
	"github.com/wirecat-dev/wirecat/proto"
)

// The Lua mqtt module: an MQTT 3.1.1/5 client for device scripts. The
// packets are luamod/mqtt's; this file is the client, which lives here
// because it waits on the device's scheduler like net.connect does. Its
// read goroutine decodes packets and hands them to the device goroutine,
// which owns everything else: acknowledgements wake the coroutine that
// published, PUBLISH packets start subscription handlers or wait for
// receive(), and a device timer sends PINGREQ.

// mqttMaxQueued bounds the messages waiting for receive(); more are dropped,
// counted in the client's `dropped`.
const mqttMaxQueued = 1024

type mqttClient struct {
	d       *Device
	c       *conn
	version byte
	keep    time.Duration // keepalive; 0: none
	retry   time.Duration // resend an unacknowledged QoS 1/2 packet after this
	tries   int           // sends before giving up on an acknowledgement
	maxPkt  int
	nextID  uint16
	ops     map[uint16]*mqttOp // our packets waiting for an acknowledgement
	qos2In  map[uint16]bool    // QoS 2 messages received, PUBREL not yet
	subs    []mqttSub
	queue   []lua.LValue // messages for receive()
	waiter  *task        // receive() waiting
	connect *task        // mqtt.connect waiting for CONNACK
	ping    *timer
	lastIn  time.Time
	lastOut time.Time
	kept    bool // counted in d.keep: it has subscription handlers
	dropped int
	err     string // why it ended, once it has
	ud      *lua.LUserData
	start   time.Time          // when mqtt.connect began: the mqtt.connect timing ends at the CONNACK
	acked   *metrics.Histogram // mqtt.puback, looked up by the first QoS 1 publish
	comp    *metrics.Histogram // mqtt.pubcomp, by the first QoS 2 one
}

type mqttSub struct {
	filter  string
	handler *lua.LFunction
	origin  string
}

// mqttOp is a PUBLISH, SUBSCRIBE or UNSUBSCRIBE waiting for its answer.
type mqttOp struct {
	t     *task
	typ   byte   // the packet's type: Publish, Pubrel, Subscribe, Unsubscribe
	qos   byte   // a PUBLISH's QoS
	wire  []byte // resent (a PUBLISH with DUP) when the answer is late
	sent  int
	timer *timer
	rel   bool // QoS 2: PUBREC came, PUBREL sent, PUBCOMP awaited
	start time.Time
}

// mqttIn is a packet from the broker: a bare acknowledgement (typ and id,
// pk nil: most of the traffic, decoded without a Packet) or a decoded one.
type mqttIn struct {
	typ byte
	id  uint16
	pk  *mqtt.Packet
	raw []byte
}

func checkMQTT(L *lua.LState) *mqttClient { return checkSelf[*mqttClient](L, "mqtt client") }

var mqttMethods = map[string]lua.LGFunction{
	"publish":     mqttPublish,
	"subscribe":   mqttSubscribe,
	"unsubscribe": mqttUnsubscribe,
	"receive":     mqttReceive,
	"disconnect":  mqttDisconnect,
	"close":       mqttDisconnect,
	"connected": func(L *lua.LState) int {
		L.Push(lua.LBool(checkMQTT(L).err == ""))
		return 1
	},
	"error": func(L *lua.LState) int {
		if e := checkMQTT(L).err; e != "" {
			L.Push(lua.LString(e))
			return 1
		}
		return 0
	},
}

func optNumber(t *lua.LTable, k string, def float64) float64 {
	if t != nil {
		if v, ok := t.RawGetString(k).(lua.LNumber); ok {
			return float64(v)
		}
	}
	return def
}

func optString(t *lua.LTable, k string) (string, bool) {
	if t != nil {
		if v, ok := t.RawGetString(k).(lua.LString); ok {
			return string(v), true
		}
	}
	return "", false
}

// mqtt.connect(addr[, opts]) -> client, or nil, err. It waits for the
// broker's CONNACK; a refusal names its reason code.
func mqttConnect(L *lua.LState) int {
	d := devOf(L)
	spec := d.connectSpec(L)
	opts := L.OptTable(2, nil)
	o := d.parseOpts(L, nil) // TLS and dial defaults; the framing is MQTT's own
	if opts != nil {
		o2 := d.parseOpts(L, withoutFrame(L, opts))
		o.link, o.timeout, o.proxy = o2.link, o2.timeout, o2.proxy
	}
	cl := &mqttClient{d: d, version: 4, ops: map[uint16]*mqttOp{}, qos2In: map[uint16]bool{}, maxPkt: d.maxFrame()}
	pk := &mqtt.Packet{FixedHeader: mqttHeader(mqtt.Connect)}
	pk.Connect.ProtocolName = []byte("MQTT")
	pk.Connect.Clean = true
	pk.Connect.Keepalive = 60
	pk.Connect.ClientIdentifier = fmt.Sprintf("wirecat-%d", d.ID)
	retry, tries := 5.0, 3.0
	if opts != nil {
		switch v := optNumber(opts, "version", 4); v {
		case 3, 4, 311:
			cl.version = 4
		case 5:
			cl.version = 5
		default:
			L.ArgError(2, fmt.Sprintf("version: %v is not 4 (3.1.1) or 5", v))
		}
		if s, ok := optString(opts, "client_id"); ok {
			pk.Connect.ClientIdentifier = s
		}
		if s, ok := optString(opts, "username"); ok {
			pk.Connect.Username, pk.Connect.UsernameFlag = []byte(s), true
		}
		if s, ok := optString(opts, "password"); ok {
			pk.Connect.Password, pk.Connect.PasswordFlag = []byte(s), true
		}
		ka := optNumber(opts, "keepalive", 60)
		if ka < 0 || ka > 65535 {
			L.ArgError(2, "keepalive: 0 to 65535 seconds")
		}
		pk.Connect.Keepalive = uint16(ka)
		if v := opts.RawGetString("clean"); v != lua.LNil {
			pk.Connect.Clean = lua.LVAsBool(v)
		}
		if w, ok := opts.RawGetString("will").(*lua.LTable); ok {
			topic, ok := optString(w, "topic")
			if !ok || topic == "" {
				L.ArgError(2, "will: a topic is needed")
			}
			payload, _ := optString(w, "payload")
			q := optNumber(w, "qos", 0)
			if q < 0 || q > 2 {
				L.ArgError(2, "will: qos is 0, 1 or 2")
			}
			pk.Connect.WillFlag, pk.Connect.WillTopic, pk.Connect.WillPayload = true, topic, []byte(payload)
			pk.Connect.WillQos, pk.Connect.WillRetain = byte(q), lua.LVAsBool(w.RawGetString("retain"))
		}
		retry = optNumber(opts, "retry", retry)
		tries = optNumber(opts, "tries", tries)
		if retry <= 0 || tries < 1 {
			L.ArgError(2, "retry must be positive and tries at least 1")
		}
	}
	pk.ProtocolVersion = cl.version
	cl.keep = time.Duration(pk.Connect.Keepalive) * time.Second
	cl.retry, cl.tries = dur(retry), int(tries)
	wire, err := mqtt.Encode(pk)
	if err != nil {
		return pushErr(L, err.Error())
	}
	if spec == "" {
		return pushErr(L, "no address to connect to")
	}
	a, err := link.Parse(spec, false)
	if err != nil {
		return pushErr(L, err.Error())
	}
	if a.Packet() {
		return pushErr(L, "mqtt needs a stream transport (tcp, tls, unix, ws, wss), not "+a.Transport())
	}
	if (a.Scheme == "ws" || a.Scheme == "wss") && o.link.WS.Subprotocol == "" {
		o.link.WS.Subprotocol = "mqtt" // MQTT over WebSocket: binary messages, subprotocol mqtt
	}
	t := d.block(L, "mqtt.connect")
	cl.start = time.Now()
	d.dialThen(a, o, func(nc net.Conn, err error) {
		if err != nil {
			d.wake(t, lua.LNil, lua.LString(link.Cause(err)))
			return
		}
		cl.c = d.newConn(nc, a.Transport(), event.Client, false, goCodec{proto.Raw})
		cl.c.pushed = true // the client reads the socket itself
		cl.ud = d.L.NewUserData()
		cl.ud.Value = cl
		cl.ud.Metatable = libs().mqtt
		cl.connect = t
		cl.c.onShut = cl.shut
		if !cl.write(wire) {
			return
		}
		go cl.read()
		// The CONNACK must come within the connect timeout.
		t.wait = d.addTimer(o.timeout.Seconds(), func() {
			t.wait = nil
			cl.fail("no CONNACK within " + o.timeout.String())
		})
	})
	return L.Yield()
}

// withoutFrame is opts minus its frame field: the protocol modules frame
// their own packets.
func withoutFrame(L *lua.LState, opts *lua.LTable) *lua.LTable {
	t := L.CreateTable(0, 8)
	opts.ForEach(func(k, v lua.LValue) {
		if k.String() != "frame" {
			t.RawSet(k, v)
		}
	})
	return t
}

// listenOpts is withoutFrame for net.listen's optional opts: nil stays nil.
func listenOpts(L *lua.LState, opts *lua.LTable) lua.LValue {
	if opts == nil {
		return lua.LNil
	}
	return withoutFrame(L, opts)
}

// serveArgs reads a module's serve(addr[, opts], table) arguments.
func serveArgs(L *lua.LState) (opts, table *lua.LTable) {
	if L.GetTop() >= 3 {
		return L.OptTable(2, nil), L.CheckTable(3)
	}
	return nil, L.CheckTable(2)
}

func mqttHeader(typ byte) mqtt.FixedHeader { return mqtt.FixedHeader{Type: typ} }

func mqttSubscription(filter string, qos byte) mqtt.Subscription {
	return mqtt.Subscription{Filter: filter, Qos: qos}
}

// dialThen dials a as net.connect does, on a dial goroutine, and calls
// done on the device goroutine: the proxy of opts.proxy or the run's
// --proxy, the run's --retry (each attempt bounded by o.timeout), -w and -s.
func (d *Device) dialThen(a link.Addr, o connOpts, done func(net.Conn, error)) {
	d.dialing()
	if err := d.proxyFor(a, &o); err != nil {
		// Posted from a goroutine of its own, as a dial's result is: this
		// is the device's goroutine, which alone empties its queue.
		go d.post(func() { done(nil, err) })
		return
	}
	d.goDialThen(o.retry != 0, func() (net.Conn, error) { return d.dialModule(a, &o) }, done)
}

// goDialThen runs dial on a dial goroutine (one of its own when it retries:
// its waits between attempts hold no dial slot) and calls done with its
// result on the device goroutine: an error counted as failed, a connection
// made after the device's end closed and not handed over.
func (d *Device) goDialThen(retries bool, dial func() (net.Conn, error), done func(net.Conn, error)) {
	run := func() {
		nc, err := dial()
		posted := d.post(func() {
			if err != nil {
				d.failed()
				done(nil, err)
				return
			}
			if d.ctx.Err() != nil {
				nc.Close()
				return
			}
			done(nc, nil)
		})
		if !posted && nc != nil {
			nc.Close()
		}
	}
	if retries {
		go run()
	} else {
		d.env.goDial(run)
	}
}

// dialModule is a protocol module's dial (mqtt, http, coap, modbus), with
// net.connect's defaults: o.timeout bounds it or, when o.retry asks for
// retries, each attempt, the retries going on until the device ends. The
// proxy is o.link.Proxy (see proxyFor). It blocks: call it on a goroutine.
func (d *Device) dialModule(a link.Addr, o *connOpts) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(d.ctx, o.timeout)
	if o.retry != 0 {
		cancel()
		ctx, cancel = context.WithCancel(d.ctx)
		o.link.Timeout = o.timeout
	}
	defer cancel()
	return d.dialRetry(ctx, a, o, d.env.dialSlots())
}

// read runs on its own goroutine: it cuts the stream into packets, decodes
// them, and hands each read's packets to the device at once.
func (cl *mqttClient) read() {
	// A device's packets are mostly a few bytes (acknowledgements) and it
	// may be one of thousands: the read buffer starts small and grows when
	// reads fill it.
	var buf []byte
	b := make([]byte, 256)
	for {
		n, err := cl.c.nc.Read(b)
		buf = append(buf, b[:n]...)
		if n == len(b) && len(b) < 16<<10 {
			b = make([]byte, 2*len(b))
		}
		var pks []mqttIn
		var derr error
		for derr == nil {
			size, ferr := mqtt.Frame(buf, cl.maxPkt)
			if ferr != nil {
				derr = ferr
				break
			}
			if size == 0 {
				break
			}
			p := buf[:size:size] // decoded strings alias it: never reused
			buf = buf[size:]
			if typ, id, ok := mqtt.QuickAck(p); ok {
				pks = append(pks, mqttIn{typ: typ, id: id, raw: p})
				continue
			}
			pk, perr := mqtt.Decode(p, cl.version)
			if perr != nil {
				derr = perr
				break
			}
			pks = append(pks, mqttIn{typ: pk.FixedHeader.Type, id: pk.PacketID, pk: pk, raw: p})
		}
		if len(buf) == 0 {
			buf = nil
		}
		if err != nil && derr == nil {
			derr = err
		}
		if !cl.d.post(func() { cl.received(pks, derr) }) || derr != nil {
			return
		}
	}
}

func (cl *mqttClient) write(wire []byte) bool {
	if cl.err != "" {
		return false
	}
	c := cl.c
	c.nc.SetWriteDeadline(time.Now().Add(c.wtime))
	if _, err := c.nc.Write(wire); err != nil {
		cl.fail(readErr(err))
		return false
	}
	cl.lastOut = time.Now()
	st := cl.d.env.stats()
	st.MsgsSent.Add(1)
	st.BytesSent.Add(int64(len(wire)))
	if cl.d.env.Sink != nil {
		cl.d.env.emit(&event.Event{Kind: event.Data, Time: cl.lastOut, Conn: c.id, Transport: c.tr, Local: c.local,
			Remote: c.remote, Role: c.role, From: c.role, Data: wire})
	}
	return true
}

func (cl *mqttClient) send(pk *mqtt.Packet) bool {
	pk.ProtocolVersion = cl.version
	wire, err := mqtt.Encode(pk)
	if err != nil {
		cl.fail(err.Error())
		return false
	}
	return cl.write(wire)
}

// fail ends the client: every coroutine waiting on it gets nil, reason.
func (cl *mqttClient) fail(reason string) {
	if cl.err != "" {
		return
	}
	cl.err = reason
	if cl.c != nil {
		cl.c.fail(fmt.Errorf("%s", reason))
	}
}

// shut runs when the connection closes, whoever closed it.
func (cl *mqttClient) shut() {
	if cl.err == "" {
		cl.err = "closed"
	}
	d := cl.d
	reason := lua.LString(cl.err)
	if t := cl.connect; t != nil {
		cl.connect = nil
		if d.ctx.Err() == nil {
			d.env.stats().ConnectFailed.Add(1) // no CONNACK
		}
		d.wake(t, lua.LNil, lua.LString("connect: "+cl.err))
	}
	for id, op := range cl.ops {
		delete(cl.ops, id)
		if op.timer != nil {
			d.stopTimer(op.timer)
		}
		d.wake(op.t, lua.LNil, reason)
	}
	if t := cl.waiter; t != nil {
		cl.waiter = nil
		d.wake(t, lua.LNil, reason)
	}
	if cl.ping != nil {
		d.stopTimer(cl.ping)
		cl.ping = nil
	}
	if cl.kept {
		cl.kept = false
		d.keep--
	}
}

func (cl *mqttClient) received(pks []mqttIn, err error) {
	if cl.err != "" {
		return
	}
	c := cl.c
	if len(pks) > 0 {
		cl.lastIn = time.Now()
	}
	for _, in := range pks {
		st := cl.d.env.stats()
		st.MsgsRecv.Add(1)
		st.BytesRecv.Add(int64(len(in.raw)))
		if cl.d.env.Sink != nil {
			cl.d.env.emit(&event.Event{Kind: event.Data, Time: cl.lastIn, Conn: c.id, Transport: c.tr, Local: c.local,
				Remote: c.remote, Role: c.role, From: c.role.Other(), Data: in.raw})
		}
		if in.pk == nil {
			cl.ack(in.typ, in.id, nil)
		} else {
			cl.handle(in.pk)
		}
		if cl.err != "" {
			return
		}
	}
	if err != nil {
		if cl.connect != nil && readErr(err) == "closed" {
			cl.fail("the broker closed the connection before its CONNACK")
			return
		}
		cl.fail(readErr(err))
	}
}

func (cl *mqttClient) handle(pk *mqtt.Packet) {
	d := cl.d
	h := pk.FixedHeader
	switch h.Type {
	case mqtt.Connack:
		t := cl.connect
		if t == nil {
			cl.fail("protocol error: a second CONNACK")
			return
		}
		cl.connect = nil
		if mqtt.Failed(cl.version, mqtt.Connack, pk.ReasonCode) {
			msg := "connection refused: " + mqtt.Reason(cl.version, mqtt.Connack, pk.ReasonCode)
			if pk.Properties.ReasonString != "" {
				msg += ": " + pk.Properties.ReasonString
			}
			d.wake(t, lua.LNil, lua.LString(msg))
			d.env.stats().ConnectFailed.Add(1)
			cl.fail(msg)
			return
		}
		d.env.stats().observe("mqtt.connect", cl.start)
		if cl.keep > 0 {
			cl.schedulePing()
		}
		d.wake(t, cl.ud)
	case mqtt.Puback, mqtt.Pubcomp, mqtt.Pubrec, mqtt.Suback, mqtt.Unsuback:
		cl.ack(h.Type, pk.PacketID, pk)
	case mqtt.Publish:
		switch h.Qos {
		case 1:
			cl.write(mqtt.AppendAck(nil, mqtt.Puback, pk.PacketID))
		case 2:
			dup := cl.qos2In[pk.PacketID]
			cl.qos2In[pk.PacketID] = true
			cl.write(mqtt.AppendAck(nil, mqtt.Pubrec, pk.PacketID))
			if dup { // delivered already: exactly once
				return
			}
		}
		cl.deliver(pk)
	case mqtt.Pubrel:
		cl.pubrel(pk.PacketID)
	case mqtt.Pingresp:
	case mqtt.Disconnect: // MQTT 5: the broker says why it hangs up
		msg := "the broker disconnected: " + mqtt.Reason(cl.version, mqtt.Disconnect, pk.ReasonCode)
		if pk.Properties.ReasonString != "" {
			msg += ": " + pk.Properties.ReasonString
		}
		cl.fail(msg)
	default:
		cl.fail("protocol error: a " + mqtt.TypeName(h.Type) + " packet from the broker")
	}
}

// ack answers the coroutine waiting for packet id. pk is the decoded
// packet, nil for a bare acknowledgement (reason code 0).
func (cl *mqttClient) ack(typ byte, id uint16, pk *mqtt.Packet) {
	d := cl.d
	if typ == mqtt.Pubrel {
		cl.pubrel(id)
		return
	}
	op := cl.ops[id]
	if op == nil {
		if typ == mqtt.Pubrec { // a late duplicate: go on with the release
			cl.write(mqtt.AppendAck(nil, mqtt.Pubrel, id))
		}
		return
	}
	var code byte
	reason := ""
	if pk != nil {
		code, reason = pk.ReasonCode, pk.Properties.ReasonString
	}
	switch {
	case typ == mqtt.Suback && op.typ == mqtt.Subscribe, typ == mqtt.Unsuback && op.typ == mqtt.Unsubscribe:
		if pk != nil && len(pk.ReasonCodes) > 0 {
			code = pk.ReasonCodes[0]
		}
	case op.typ == mqtt.Publish && op.qos == 1 && typ == mqtt.Puback:
	case op.typ == mqtt.Publish && op.qos == 2 && typ == mqtt.Pubrec:
		if !mqtt.Failed(cl.version, typ, code) {
			op.typ, op.sent, op.wire = mqtt.Pubrel, 0, mqtt.AppendAck(nil, mqtt.Pubrel, id)
			cl.sendOp(id, op)
			return
		}
	case op.typ == mqtt.Pubrel && typ == mqtt.Pubcomp:
	case op.typ == mqtt.Pubrel && typ == mqtt.Pubrec: // our PUBREL crossed a resent PUBREC
		return
	default:
		cl.fail(fmt.Sprintf("protocol error: %s for packet %d, which waits for another answer", mqtt.TypeName(typ), id))
		return
	}
	delete(cl.ops, id)
	if op.timer != nil {
		d.stopTimer(op.timer)
	}
	if typ == mqtt.Unsuback && cl.version < 5 {
		code = 0
	}
	if mqtt.Failed(cl.version, typ, code) {
		msg := mqtt.TypeName(typ) + ": " + mqtt.Reason(cl.version, typ, code)
		if reason != "" {
			msg += ": " + reason
		}
		d.failed()
		d.wake(op.t, lua.LNil, lua.LString(msg))
		return
	}
	switch {
	case typ == mqtt.Puback:
		cl.observe("mqtt.puback", &cl.acked, op.start)
	case typ == mqtt.Pubcomp && op.qos == 2:
		cl.observe("mqtt.pubcomp", &cl.comp, op.start)
	}
	if typ == mqtt.Suback {
		d.wake(op.t, lua.LNumber(code))
		return
	}
	d.wake(op.t, lua.LTrue)
}

// observe records the time since start in the timing name; h caches
// the histogram (Stats.observe without the cache).
func (cl *mqttClient) observe(name string, h **metrics.Histogram, start time.Time) {
	if *h == nil {
		m, err := cl.d.env.stats().metric(name, kindTiming)
		if err != nil {
			return // the script took the name for another kind, or all the names
		}
		*h = m.h
	}
	(*h).Observe(time.Since(start))
}

// pubrel completes a QoS 2 message from the broker.
func (cl *mqttClient) pubrel(id uint16) {
	delete(cl.qos2In, id)
	cl.write(mqtt.AppendAck(nil, mqtt.Pubcomp, id))
}

// newID is a packet identifier not in use.
func (cl *mqttClient) newID() uint16 {
	for {
		cl.nextID++
		if cl.nextID != 0 && cl.ops[cl.nextID] == nil {
			return cl.nextID
		}
	}
}

// sendOp sends op's packet and arms its retry: after cl.retry without an
// answer it is sent again (a PUBLISH with DUP), and after cl.tries sends
// the waiting coroutine gets nil and why.
func (cl *mqttClient) sendOp(id uint16, op *mqttOp) {
	d := cl.d
	if op.timer != nil {
		d.stopTimer(op.timer)
		op.timer = nil
	}
	if op.sent > 0 && op.typ == mqtt.Publish {
		op.wire[0] |= 0x08 // DUP
	}
	op.sent++
	if !cl.write(op.wire) {
		return // fail woke it
	}
	op.timer = d.addTimer(cl.retry.Seconds(), func() {
		op.timer = nil
		if cl.ops[id] != op {
			return
		}
		if op.sent < cl.tries {
			cl.sendOp(id, op)
			return
		}
		delete(cl.ops, id)
		d.failed()
		d.wake(op.t, lua.LNil, lua.LString(fmt.Sprintf("no answer to %s %d after %d tries, %v apart",
			mqtt.TypeName(op.typ), id, op.sent, cl.retry)))
	})
}

// schedulePing sends PINGREQ when nothing was sent for half the keepalive,
// and gives up on a broker silent for one and a half.
func (cl *mqttClient) schedulePing() {
	d := cl.d
	half := cl.keep / 2
	cl.ping = d.addTimer(half.Seconds(), func() {
		cl.ping = nil
		if cl.err != "" {
			return
		}
		if time.Since(cl.lastIn) > cl.keep*3/2 {
			cl.fail(fmt.Sprintf("the broker was silent for %v (keepalive %v)", time.Since(cl.lastIn).Round(time.Second), cl.keep))
			return
		}
		if time.Since(cl.lastOut) >= half-half/10 {
			if !cl.send(&mqtt.Packet{FixedHeader: mqttHeader(mqtt.Pingreq)}) {
				return
			}
		}
		cl.schedulePing()
	})
}

// deliver hands a received message to the first subscription handler whose
// filter matches, or to receive().
func (cl *mqttClient) deliver(pk *mqtt.Packet) {
	d := cl.d
	L := d.L
	msg := L.CreateTable(0, 5)
	msg.RawSetString("topic", lua.LString(pk.TopicName))
	msg.RawSetString("payload", lua.LString(pk.Payload))
	msg.RawSetString("qos", lua.LNumber(pk.FixedHeader.Qos))
	msg.RawSetString("retain", lua.LBool(pk.FixedHeader.Retain))
	msg.RawSetString("dup", lua.LBool(pk.FixedHeader.Dup))
	for _, s := range cl.subs {
		if s.handler != nil && mqtt.Match(s.filter, pk.TopicName) {
			d.spawn(s.handler, s.origin, msg)
			return
		}
	}
	if t := cl.waiter; t != nil {
		cl.waiter = nil
		d.wake(t, msg)
		return
	}
	if len(cl.queue) >= mqttMaxQueued {
		cl.dropped++
		return
	}
	cl.queue = append(cl.queue, msg)
}

// client:publish(topic, payload[, {qos=, retain=}]) -> true, or nil, err.
// QoS 1 and 2 wait for the broker's acknowledgement.
func mqttPublish(L *lua.LState) int {
	cl := checkMQTT(L)
	topic := L.CheckString(2)
	payload := L.OptString(3, "")
	opts := L.OptTable(4, nil)
	qos := optNumber(opts, "qos", 0)
	if qos != 0 && qos != 1 && qos != 2 {
		L.ArgError(4, "qos is 0, 1 or 2")
	}
	if cl.err != "" {
		return pushErr(L, cl.err)
	}
	if len(topic) > 65535 {
		L.ArgError(2, "a topic is at most 65535 bytes")
	}
	retain := opts != nil && lua.LVAsBool(opts.RawGetString("retain"))
	if qos == 0 {
		if !cl.write(mqtt.AppendPublish(nil, cl.version, 0, retain, 0, topic, []byte(payload))) {
			return pushErr(L, cl.err)
		}
		L.Push(lua.LTrue)
		return 1
	}
	t := cl.d.block(L, "mqtt publish")
	id := cl.newID()
	op := &mqttOp{t: t, typ: mqtt.Publish, qos: byte(qos), start: time.Now(),
		wire: mqtt.AppendPublish(nil, cl.version, byte(qos), retain, id, topic, []byte(payload))}
	cl.ops[id] = op
	cl.sendOp(id, op)
	return L.Yield()
}

// request sends pk with a fresh packet identifier and waits for its answer.
func (cl *mqttClient) request(L *lua.LState, pk *mqtt.Packet, what string) int {
	t := cl.d.block(L, "mqtt "+what)
	id := cl.newID()
	pk.PacketID = id
	pk.ProtocolVersion = cl.version
	wire, err := mqtt.Encode(pk)
	if err != nil {
		cl.d.wake(t, lua.LNil, lua.LString(err.Error()))
		return L.Yield()
	}
	op := &mqttOp{t: t, typ: pk.FixedHeader.Type, wire: wire}
	cl.ops[id] = op
	cl.sendOp(id, op)
	return L.Yield()
}

// client:subscribe(filter[, qos][, handler]) -> granted qos, or nil, err.
func mqttSubscribe(L *lua.LState) int {
	cl := checkMQTT(L)
	filter := L.CheckString(2)
	qos := 0.0
	var handler *lua.LFunction
	for i := 3; i <= L.GetTop(); i++ {
		switch v := L.Get(i).(type) {
		case lua.LNumber:
			qos = float64(v)
		case *lua.LFunction:
			handler = v
		case *lua.LNilType:
		default:
			L.ArgError(i, "qos or handler expected")
		}
	}
	if qos != 0 && qos != 1 && qos != 2 {
		L.ArgError(3, "qos is 0, 1 or 2")
	}
	if cl.err != "" {
		return pushErr(L, cl.err)
	}
	// Registered before the SUBACK: retained messages may come first.
	cl.subs = append(cl.subs, mqttSub{filter: filter, handler: handler, origin: "in mqtt handler for " + filter + " set at " + where(L)})
	if handler != nil && !cl.kept {
		cl.kept = true // a client with handlers keeps its device alive until it closes
		cl.d.keep++
	}
	pk := &mqtt.Packet{FixedHeader: mqttHeader(mqtt.Subscribe)}
	pk.Filters = append(pk.Filters, mqttSubscription(filter, byte(qos)))
	return cl.request(L, pk, "subscribe")
}

// client:unsubscribe(filter) -> true, or nil, err.
func mqttUnsubscribe(L *lua.LState) int {
	cl := checkMQTT(L)
	filter := L.CheckString(2)
	if cl.err != "" {
		return pushErr(L, cl.err)
	}
	subs := cl.subs[:0]
	for _, s := range cl.subs {
		if s.filter != filter {
			subs = append(subs, s)
		}
	}
	cl.subs = subs
	pk := &mqtt.Packet{FixedHeader: mqttHeader(mqtt.Unsubscribe)}
	pk.Filters = append(pk.Filters, mqttSubscription(filter, 0))
	return cl.request(L, pk, "unsubscribe")
}

// client:receive([timeout]) -> msg, or nil, "timeout" | "closed" | err.
// It gets the messages no subscription handler took.
func mqttReceive(L *lua.LState) int {
	cl := checkMQTT(L)
	timeout := -1.0
	if v := L.Get(2); v != lua.LNil {
		timeout = float64(L.CheckNumber(2))
	}
	if cl.waiter != nil {
		L.RaiseError("the mqtt client already has a receive waiting")
	}
	if len(cl.queue) > 0 {
		m := cl.queue[0]
		cl.queue[0] = nil
		cl.queue = cl.queue[1:]
		L.Push(m)
		return 1
	}
	if cl.err != "" {
		return pushErr(L, cl.err)
	}
	if timeout == 0 {
		return pushErr(L, "timeout")
	}
	d := cl.d
	t := d.block(L, "mqtt receive")
	cl.waiter = t
	if timeout > 0 {
		t.wait = d.addTimer(timeout, func() {
			t.wait = nil
			if cl.waiter == t {
				cl.waiter = nil
				d.wake(t, lua.LNil, lua.LString("timeout"))
			}
		})
	}
	return L.Yield()
}

// client:disconnect([reason]) sends DISCONNECT (MQTT 5: with the reason
// code, 0x04 to have the broker publish the will) and closes.
func mqttDisconnect(L *lua.LState) int {
	cl := checkMQTT(L)
	if cl.err != "" {
		return 0
	}
	pk := &mqtt.Packet{FixedHeader: mqttHeader(mqtt.Disconnect)}
	if cl.version == 5 {
		pk.ReasonCode = byte(L.OptInt(2, 0))
	}
	cl.send(pk)
	cl.err = "closed"
	cl.c.shut(true)
	return 0
}
