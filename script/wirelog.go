package script

import (
	"net"
	"sync"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/pipe"
)

// wireLog reports a connection a protocol module runs itself (an
// http.request's, a coap.request's or coap.observe's socket) as the events
// of a net.connect: its open, each message as the exact bytes that crossed
// the wire, and its close, so -o text|json, --record, `wirecat show` and
// `wirecat replay` see a device's HTTP and CoAP traffic like its other
// connections. Its methods may be called from any goroutine (the sinks
// lock); close reports once.
type wireLog struct {
	env               *Env
	id                uint64
	tr, local, remote string
	role              event.Side
	once              sync.Once
}

func (d *Device) openWire(nc net.Conn, tr string, role event.Side) *wireLog {
	return d.env.openWire(addrString(nc.LocalAddr()), addrString(nc.RemoteAddr()), tr, role)
}

func (e *Env) openWire(local, remote, tr string, role event.Side) *wireLog {
	w := &wireLog{env: e, id: pipe.NextID(), tr: tr, local: local, remote: remote, role: role}
	w.emit(event.Open, 0, nil, nil)
	return w
}

func (w *wireLog) emit(k event.Kind, from event.Side, data []byte, err error) {
	if w.env.Sink == nil {
		return
	}
	w.env.emit(&event.Event{Kind: k, Time: time.Now(), Conn: w.id, Transport: w.tr, Local: w.local,
		Remote: w.remote, Role: w.role, From: from, Data: data, Err: err})
}

// sent reports b, written by the device.
func (w *wireLog) sent(b []byte) { w.emit(event.Data, w.role, b, nil) }

// received reports b, from the peer.
func (w *wireLog) received(b []byte) { w.emit(event.Data, w.role.Other(), b, nil) }

// close reports the end, by the device (byUs) or by the peer, with err
// when it broke.
func (w *wireLog) close(byUs bool, err error) {
	w.once.Do(func() {
		if err != nil {
			w.emit(event.Error, 0, nil, err)
		}
		from := w.role.Other()
		if byUs {
			from = w.role
		}
		w.emit(event.Close, from, nil, nil)
	})
}

// loggedConn is a datagram connection whose every datagram, either way, is
// reported to its wireLog (one Read, one datagram). Close reports the end.
type loggedConn struct {
	net.Conn
	w  *wireLog
	st *Stats // counts what it sends and the bytes it receives
}

func (c *loggedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.st.BytesRecv.Add(int64(n))
		c.w.received(b[:n])
	}
	return n, err
}

func (c *loggedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err == nil {
		c.st.MsgsSent.Add(1)
		c.st.BytesSent.Add(int64(len(b)))
		c.w.sent(b)
	}
	return n, err
}

func (c *loggedConn) Close() error {
	c.w.close(true, nil)
	return c.Conn.Close()
}
