package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// WSOptions shape ws:// and wss:// connections, on both sides.
type WSOptions struct {
	// Text sends text messages (--ws-text); binary otherwise. Either kind
	// is read.
	Text bool
	// Header adds request headers to a client's upgrade, each `Key: Value`
	// (--header); `Host: name` replaces the Host header.
	Header []string
	// Subprotocol is offered by a client and required by a listener
	// (--subprotocol, e.g. mqtt).
	Subprotocol string
	// Origin is the Origin header a client sends; on a listener, the only
	// origin host accepted (default: any, wirecat being a tool, not a site).
	Origin string
	// Ping sends a ping this often; a peer whose pong does not come within
	// the same time is dropped (--ws-ping). 0: no pings.
	Ping time.Duration
	// MaxMessage is the largest message read (--max-frame); 0: 1 MiB.
	MaxMessage int
}

const (
	// wsDefaultMax is the largest message read when none is configured:
	// proto's default --max-frame.
	wsDefaultMax = 1 << 20
	// wsCloseWait bounds the close handshake: a peer that does not answer
	// our close frame within it is cut, so a signal still ends wirecat
	// within a second.
	wsCloseWait = 500 * time.Millisecond
	// wsCloseLinger bounds it instead when wirecat closes because it is
	// done (its input ended and the last replies had their time): a peer
	// still reading a backlog of messages answers the close only once it
	// reaches it. A signal meanwhile cuts the wait (Close).
	wsCloseLinger = 5 * time.Second
	// wsHandshakeWait bounds how long a client of a ws listener may take to
	// send its upgrade request, and how long an upgraded client waits to be
	// taken by the accept loop (past --max-conns it is told to try later).
	wsHandshakeWait = 10 * time.Second
	// wsMaxHeader bounds an upgrade request's headers.
	wsMaxHeader = 16 << 10
	// wsBodyShown is how much of a refused upgrade's body an error quotes.
	wsBodyShown = 200
)

// WSConn is a WebSocket connection as a net.Conn of messages: each Read
// returns one message (or, when p is smaller, the start of one and its rest
// on the next Reads), each Write sends one. A close from the peer with code
// 1000, 1001 or none reads as io.EOF; other codes are errors naming the
// code and reason. pipe and relay treat it as they treat a connected UDP
// socket, except that it ends.
type WSConn struct {
	c        *websocket.Conn
	typ      websocket.MessageType
	raw      net.Conn   // the TCP or TLS conn underneath, for its addresses
	co       *coalescer // a client's writes, gathered; nil on a server
	peer     string
	o        *Options
	max      int
	rd       io.Reader // the message being read, nil between messages
	got      int       // bytes read of it so far
	expired  atomic.Bool
	pingErr  atomic.Pointer[error]
	stop     context.CancelFunc // ends the pinger
	once     sync.Once
	closing  atomic.Bool   // a close is under way
	hurry    chan struct{} // closed by a Close while one is under way
	hurried  sync.Once
	mu       sync.Mutex
	deadline *time.Timer // the read deadline, once set
	ended    *wsClose    // the first close frame, sent or received; under mu
}

// wsClose is the close frame that ended a WebSocket.
type wsClose struct {
	code   websocket.StatusCode
	reason string
	byPeer bool
}

func newWSConn(c *websocket.Conn, raw net.Conn, peer string, o *Options) *WSConn {
	var ws WSOptions
	if o != nil {
		ws = o.WS
	}
	w := &WSConn{c: c, typ: websocket.MessageBinary, raw: raw, peer: peer, o: o, max: ws.MaxMessage, hurry: make(chan struct{})}
	if ws.Text {
		w.typ = websocket.MessageText
	}
	if w.max <= 0 {
		w.max = wsDefaultMax
	}
	// One byte over, so the reader sees the message is too big and says so
	// in its own words before the library does.
	c.SetReadLimit(int64(w.max) + 1)
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	if ws.Ping > 0 {
		go w.pinger(ctx, ws.Ping)
	}
	return w
}

// pinger pings every d and drops a peer whose pong is late.
func (w *WSConn) pinger(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, d)
		err := w.c.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			e := fmt.Errorf("%s did not answer a ping within %v (--ws-ping)", w.peer, d)
			w.pingErr.Store(&e)
			w.c.CloseNow()
			return
		}
	}
}

// Subprotocol is the subprotocol both sides agreed on, or "".
func (w *WSConn) Subprotocol() string { return w.c.Subprotocol() }

// Read reads one message into p; see WSConn.
func (w *WSConn) Read(p []byte) (int, error) {
	for {
		cont := w.rd != nil // the rest of a message p could not hold
		n, end, err := w.readSome(p)
		if n == 0 && end && cont && err == nil {
			continue // that rest was empty: p held the message exactly; on to the next
		}
		return n, err
	}
}

// ReadMessage reads the next whole message, appended to buf (which it
// grows as needed, up to the message limit). It is what message-minded
// readers use instead of Read: a buffer sized for the largest message
// would hold --max-frame per connection whatever the traffic.
func (w *WSConn) ReadMessage(buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			// Room to read into, doubling: append's growth (a quarter at a
			// time for large slices) copies a 256 KiB message seven times.
			nb := make([]byte, len(buf), max(2*cap(buf), 4<<10))
			copy(nb, buf)
			buf = nb
		}
		n, end, err := w.readSome(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil || end {
			return buf, err
		}
	}
}

// readSome reads from the current message (the next one if none is under
// way) until p is full or the message ends (end).
func (w *WSConn) readSome(p []byte) (n int, end bool, err error) {
	if w.rd == nil {
		if w.expired.Load() {
			return 0, false, os.ErrDeadlineExceeded
		}
		_, r, err := w.c.Reader(context.Background())
		if err != nil {
			return 0, false, w.readErr(err)
		}
		w.rd, w.got = r, 0
	}
	for n < len(p) {
		m, err := w.rd.Read(p[n:])
		n += m
		w.got += m
		if w.got > w.max {
			w.rd = nil
			w.closeWith(websocket.StatusMessageTooBig, "over wirecat's --max-frame", wsCloseWait)
			return 0, false, fmt.Errorf("a message from %s over %d bytes (--max-frame)", w.peer, w.max)
		}
		if err == io.EOF {
			w.rd = nil
			return n, true, nil
		}
		if err != nil {
			w.rd = nil
			return n, false, w.readErr(err)
		}
	}
	return n, false, nil
}

// readErr says why reading stopped: io.EOF for a normal close.
func (w *WSConn) readErr(err error) error {
	if e := w.pingErr.Load(); e != nil {
		return *e
	}
	if w.expired.Load() {
		return os.ErrDeadlineExceeded
	}
	if code := websocket.CloseStatus(err); code != -1 {
		var ce websocket.CloseError
		errors.As(err, &ce)
		first := w.noteClose(code, ce.Reason, true)
		switch code {
		case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
			return io.EOF
		}
		if !first {
			// Our close frame went first; the peer answered with another
			// code: still the end we asked for.
			return io.EOF
		}
		return fmt.Errorf("%s closed the WebSocket with %s", w.peer, closeText(code, ce.Reason))
	}
	if errors.Is(err, websocket.ErrMessageTooBig) {
		return fmt.Errorf("a message from %s over %d bytes (--max-frame)", w.peer, w.max)
	}
	if errors.Is(err, net.ErrClosed) {
		return net.ErrClosed
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s closed the connection without a WebSocket close", w.peer)
	}
	return err
}

// noteClose keeps the first close frame of the connection, sent (byPeer
// false) or received, and shows it with -v. It reports whether this one
// was the first.
func (w *WSConn) noteClose(code websocket.StatusCode, reason string, byPeer bool) bool {
	w.mu.Lock()
	first := w.ended == nil
	if first {
		w.ended = &wsClose{code: code, reason: reason, byPeer: byPeer}
	}
	w.mu.Unlock()
	switch {
	case !first:
	case byPeer:
		w.o.debugf("ws: %s closed the WebSocket with %s", w.peer, closeText(code, reason))
	default:
		w.o.debugf("ws: closing the WebSocket to %s with %s", w.peer, closeText(code, reason))
	}
	return first
}

// CloseFrame returns the close frame that ended the connection, the first
// one sent or received: its code and reason, and whether the peer sent it.
// ok is false while none has been (or when the connection broke without
// one).
func (w *WSConn) CloseFrame() (code int, reason string, byPeer, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended == nil {
		return 0, "", false, false
	}
	return int(w.ended.code), w.ended.reason, w.ended.byPeer, true
}

// CloseText shows a WebSocket close code with its name and the reason, if
// any: `1000 (normal)`, `4000 (application) "bye"`.
func CloseText(code int, reason string) string {
	return closeText(websocket.StatusCode(code), reason)
}

// closeText shows a close code with its name and the reason, if any:
// `1000 (normal)`, `4000 "bye"`.
func closeText(code websocket.StatusCode, reason string) string {
	s := fmt.Sprint(int(code))
	if n := closeName(code); n != "" {
		s += " " + n
	}
	if reason != "" {
		s += fmt.Sprintf(" %q", reason)
	}
	return s
}

// closeName names the close codes of RFC 6455 section 7.4.1.
func closeName(c websocket.StatusCode) string {
	switch c {
	case websocket.StatusNormalClosure:
		return "(normal)"
	case websocket.StatusGoingAway:
		return "(going away)"
	case websocket.StatusProtocolError:
		return "(protocol error)"
	case websocket.StatusUnsupportedData:
		return "(unsupported data)"
	case websocket.StatusNoStatusRcvd:
		return "(no code)"
	case websocket.StatusInvalidFramePayloadData:
		return "(invalid payload)"
	case websocket.StatusPolicyViolation:
		return "(policy violation)"
	case websocket.StatusMessageTooBig:
		return "(message too big)"
	case websocket.StatusInternalError:
		return "(internal error)"
	case websocket.StatusTryAgainLater:
		return "(try again later)"
	}
	if c >= 4000 && c <= 4999 {
		return "(application)"
	}
	return ""
}

// Write sends p as one message.
func (w *WSConn) Write(p []byte) (int, error) {
	err := w.c.Write(context.Background(), w.typ, p)
	if err == nil && w.co != nil {
		err = w.co.Flush()
	}
	if err != nil {
		if e := w.pingErr.Load(); e != nil {
			return 0, *e
		}
		if errors.Is(err, net.ErrClosed) {
			return 0, net.ErrClosed
		}
		return 0, err
	}
	return len(p), nil
}

// Close sends a normal close and waits a moment for the peer's answer.
// During a close already under way (one lingering for a slow peer's
// answer) it cuts the wait.
func (w *WSConn) Close() error {
	if w.closing.Load() {
		w.hurried.Do(func() { close(w.hurry) })
	}
	w.closeWith(websocket.StatusNormalClosure, "", wsCloseWait)
	return nil
}

// CloseWith closes with code and reason (a replay sends the recorded
// ones) and waits a moment for the peer's answer, as Close does. A code
// no close frame may carry (under 1000, 1004 to 1006, 1015) is refused
// and the connection closed with 1000.
func (w *WSConn) CloseWith(code int, reason string) error {
	var err error
	if !validCloseCode(code) {
		err = fmt.Errorf("close code %d cannot be sent in a close frame", code)
		code = int(websocket.StatusNormalClosure)
	}
	if len(reason) > maxCloseReason {
		reason = reason[:maxCloseReason] // a control frame holds 125 bytes, 2 of them the code
	}
	w.closeWith(websocket.StatusCode(code), reason, wsCloseWait)
	return err
}

// maxCloseReason is the longest reason a close frame holds (RFC 6455 5.5).
const maxCloseReason = 123

// validCloseCode reports whether code may be sent in a close frame (RFC
// 6455 7.4): 1000 to 4999 but for the reserved 1004, 1005, 1006 and 1015.
func validCloseCode(code int) bool {
	switch code {
	case 1004, 1005, 1006, 1015:
		return false
	}
	return code >= 1000 && code <= 4999
}

// closeWith closes once, with code and reason, waiting up to wait for the
// peer's answer (or until Close hurries it).
func (w *WSConn) closeWith(code websocket.StatusCode, reason string, wait time.Duration) {
	w.closing.Store(true)
	w.once.Do(func() {
		w.stop()
		// Noted before the frame goes: whoever sees the connection end
		// after this finds it.
		w.noteClose(code, reason, false)
		w.mu.Lock()
		if w.deadline != nil {
			w.deadline.Stop()
		}
		w.mu.Unlock()
		closeBounded(w.c, w.raw, code, reason, wait, w.hurry)
	})
}

// closeBounded sends a close frame and waits up to wait for the peer's
// (or until hurry is closed); the library alone would wait seconds (while
// a read is blocked, until the peer answers), so the socket underneath is
// closed then.
func closeBounded(c *websocket.Conn, raw net.Conn, code websocket.StatusCode, reason string, wait time.Duration, hurry <-chan struct{}) {
	done := make(chan struct{})
	go func() {
		c.Close(code, reason)
		close(done)
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	case <-hurry:
	}
	if raw != nil {
		raw.Close()
	}
	c.CloseNow()
}

func (w *WSConn) LocalAddr() net.Addr  { return w.raw.LocalAddr() }
func (w *WSConn) RemoteAddr() net.Addr { return w.raw.RemoteAddr() }

// SetDeadline sets the read deadline; writes are bounded by the close.
func (w *WSConn) SetDeadline(t time.Time) error { return w.SetReadDeadline(t) }

// SetReadDeadline ends the connection at t: a WebSocket read cannot be
// resumed after a timeout, and wirecat sets one only to stop waiting for
// the last replies. Reads then fail with os.ErrDeadlineExceeded.
func (w *WSConn) SetReadDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.deadline != nil {
		w.deadline.Stop()
		w.deadline = nil
	}
	if t.IsZero() {
		return nil
	}
	w.deadline = time.AfterFunc(time.Until(t), func() {
		w.expired.Store(true)
		// wirecat is done: a peer busy with a backlog has a while to
		// answer the close (a signal cuts it short).
		w.closeWith(websocket.StatusNormalClosure, "", wsCloseLinger)
	})
	return nil
}

// SetWriteDeadline is accepted and ignored: a write waits for the socket
// like a TCP write, and Close bounds it.
func (w *WSConn) SetWriteDeadline(time.Time) error { return nil }

// CheckHeader says whether s is a header `Key: Value` a client can send.
func CheckHeader(s string) error {
	_, err := parseHeaders([]string{s})
	return err
}

// parseHeaders reads --header values, `Key: Value` each.
func parseHeaders(hs []string) (http.Header, error) {
	h := http.Header{}
	for _, s := range hs {
		k, v, ok := strings.Cut(s, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\r\n") || strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("%w: --header %q: want 'Key: Value'", ErrBadOption, s)
		}
		h.Add(k, strings.TrimSpace(v))
	}
	return h, nil
}

// wsUnder is the address a WebSocket runs over: tcp for ws, tls for wss.
func wsUnder(a Addr) Addr {
	u := a
	u.Scheme, u.Path = "tcp", ""
	if a.Scheme == "wss" {
		u.Scheme = "tls"
	}
	return u
}

// dialWS connects and upgrades. The TCP connect and TLS handshake are
// Dial's own, so their failures read the same as for tcp:// and tls://.
func dialWS(ctx context.Context, a Addr, o *Options) (net.Conn, error) {
	var ws WSOptions
	if o != nil {
		ws = o.WS
	}
	hdr, err := parseHeaders(ws.Header)
	if err != nil {
		return nil, err
	}
	host := hdr.Get("Host")
	hdr.Del("Host")
	if ws.Origin != "" {
		hdr.Set("Origin", ws.Origin)
	}
	var raw net.Conn
	var co *coalescer
	var dialErr error
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		raw, dialErr = Dial(ctx, wsUnder(a), o)
		if dialErr != nil {
			return nil, dialErr
		}
		co = &coalescer{Conn: raw}
		return co, nil
	}
	tr := &http.Transport{DialContext: dial, DialTLSContext: dial, DisableCompression: true}
	defer tr.CloseIdleConnections()
	opts := &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is a refusal, shown with its status
		}},
		HTTPHeader: hdr,
		Host:       host,
	}
	if ws.Subprotocol != "" {
		opts.Subprotocols = []string{ws.Subprotocol}
	}
	c, resp, err := websocket.Dial(ctx, a.String(), opts)
	if dialErr != nil {
		return nil, dialErr
	}
	if err != nil {
		oe := &OpError{Op: "connect", Addr: a, Err: err}
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			oe.Err = fmt.Errorf("upgrade refused: %s%s", resp.Status, bodyText(resp))
			if loc := resp.Header.Get("Location"); loc != "" {
				oe.Hint = "redirected to " + loc
			}
		} else if ctx.Err() != nil {
			oe.Err = ctx.Err()
		} else {
			oe.Err = errors.New(strings.TrimPrefix(err.Error(), "failed to WebSocket dial: "))
		}
		if raw != nil {
			raw.Close()
		}
		return nil, oe
	}
	if ws.Subprotocol != "" && c.Subprotocol() != ws.Subprotocol {
		closeBounded(c, raw, websocket.StatusProtocolError, "subprotocol "+ws.Subprotocol+" wanted", wsCloseWait, nil)
		return nil, &OpError{Op: "connect", Addr: a, Err: fmt.Errorf("the server did not agree to subprotocol %q", ws.Subprotocol)}
	}
	w := newWSConn(c, raw, a.String(), o)
	w.co = co
	co.on.Store(true)
	return w, nil
}

// wsLibChunk is the size of the library's write buffer (bufio's default):
// a client masks each frame in chunks of it and writes every chunk.
const wsLibChunk = 4096

// wsCoalesce is how much a client gathers before writing.
const wsCoalesce = 256 << 10

// coalescer gathers a WebSocket client's writes: the library writes a
// masked frame 4 KiB at a time, one system call each, which halves bulk
// throughput. Full 4 KiB chunks wait here (up to wsCoalesce); any other
// write (the end of a frame, a control frame) sends everything, and
// WSConn.Write flushes after each message, so nothing waits past its
// message. It stays off until the upgrade is done, so the HTTP request is
// never held.
type coalescer struct {
	net.Conn
	on  atomic.Bool
	mu  sync.Mutex
	buf []byte
}

func (c *coalescer) Write(p []byte) (int, error) {
	if !c.on.Load() {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) == wsLibChunk && len(c.buf)+len(p) <= wsCoalesce {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	if len(c.buf) == 0 {
		return c.Conn.Write(p)
	}
	c.buf = append(c.buf, p...)
	return len(p), c.flushLocked()
}

// Flush writes what is gathered.
func (c *coalescer) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *coalescer) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// bodyText quotes the start of a refused upgrade's body.
func bodyText(resp *http.Response) string {
	if resp.Body == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, wsBodyShown+1))
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	more := ""
	if len(b) > wsBodyShown {
		b, more = b[:wsBodyShown], "..."
	}
	return fmt.Sprintf(": %q%s", b, more)
}

// WSListener serves WebSocket upgrades on its path and yields them from
// Accept. Plain HTTP requests for other paths get 404; a request for the
// path that is not an upgrade gets 426. A wss listener is a TLS listener
// underneath (its Fingerprint is set).
type WSListener struct {
	inner       net.Listener
	a           Addr
	o           *Options
	srv         *http.Server
	conns       chan *WSConn
	done        chan struct{}
	once        sync.Once
	Fingerprint string // wss: the server certificate's
}

type rawConnKey struct{}

// listenWS listens on the TCP (or TLS) address underneath and serves
// upgrades with net/http.
func listenWS(ctx context.Context, a Addr, o *Options) (net.Listener, error) {
	inner, err := Listen(ctx, wsUnder(a), o)
	if err != nil {
		if oe, ok := err.(*OpError); ok {
			oe.Addr = a
		}
		return nil, err
	}
	l := &WSListener{inner: inner, a: a, o: o, conns: make(chan *WSConn), done: make(chan struct{})}
	if tl, ok := inner.(*TLSListener); ok {
		l.Fingerprint = tl.Fingerprint
	}
	l.srv = &http.Server{
		Handler:           l,
		ReadHeaderTimeout: wsHandshakeWait,
		MaxHeaderBytes:    wsMaxHeader,
		ErrorLog:          log.New(serverLog{o}, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, rawConnKey{}, c)
		},
	}
	go l.srv.Serve(inner)
	return l, nil
}

// serverLog passes net/http's complaints (a failed TLS handshake, an
// accept error) to the log, one line each, without its "http: " prefix.
type serverLog struct{ o *Options }

func (s serverLog) Write(p []byte) (int, error) {
	line := strings.TrimPrefix(strings.TrimSpace(string(p)), "http: ")
	s.o.logf("ws: %s", line)
	return len(p), nil
}

func (l *WSListener) path() string {
	p, _, _ := strings.Cut(l.a.Path, "?")
	return p
}

func (l *WSListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != l.path() {
		http.Error(w, fmt.Sprintf("404 page not found (WebSocket on %s)", l.path()), http.StatusNotFound)
		return
	}
	var ws WSOptions
	if l.o != nil {
		ws = l.o.WS
	}
	upgrade := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	if upgrade && ws.Subprotocol != "" && !offers(r, ws.Subprotocol) {
		http.Error(w, fmt.Sprintf("subprotocol %q required", ws.Subprotocol), http.StatusBadRequest)
		l.o.logf("ws: %s refused: it did not offer subprotocol %q (offered %q)", r.RemoteAddr, ws.Subprotocol, r.Header.Get("Sec-WebSocket-Protocol"))
		return
	}
	opts := &websocket.AcceptOptions{InsecureSkipVerify: ws.Origin == ""}
	if ws.Subprotocol != "" {
		opts.Subprotocols = []string{ws.Subprotocol}
	}
	if ws.Origin != "" {
		host := ws.Origin
		if u, err := url.Parse(ws.Origin); err == nil && u.Host != "" {
			host = u.Host
		}
		opts.OriginPatterns = []string{host}
	}
	c, err := websocket.Accept(w, r, opts)
	if err != nil {
		l.o.logf("ws: %s refused: %s", r.RemoteAddr, strings.TrimPrefix(err.Error(), "failed to accept WebSocket connection: "))
		return
	}
	raw, _ := r.Context().Value(rawConnKey{}).(net.Conn)
	wc := newWSConn(c, raw, r.RemoteAddr, l.o)
	t := time.NewTimer(wsHandshakeWait)
	defer t.Stop()
	select {
	case l.conns <- wc:
	case <-l.done:
		wc.closeWith(websocket.StatusGoingAway, "", wsCloseWait)
	case <-t.C:
		l.o.logf("ws: %s closed: not accepted within %v (--max-conns?)", r.RemoteAddr, wsHandshakeWait)
		wc.closeWith(websocket.StatusTryAgainLater, "too many clients", wsCloseWait)
	}
}

// offers reports whether the upgrade request offers subprotocol p.
func offers(r *http.Request, p string) bool {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, s := range strings.Split(h, ",") {
			if strings.TrimSpace(s) == p {
				return true
			}
		}
	}
	return false
}

// Accept waits for the next upgraded client.
func (l *WSListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops listening; connections already accepted go on.
func (l *WSListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.srv.Close()
	})
	return nil
}

func (l *WSListener) Addr() net.Addr { return l.inner.Addr() }
