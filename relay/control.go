package relay

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SetFaults puts f in force: pairs open now apply it from their next
// message (with Config.Dynamic), a --cut-after or --reset time from the
// next pair on.
func (r *Relay) SetFaults(f Faults) { r.faults.Store(&f) }

// CurrentFaults returns the faults in force.
func (r *Relay) CurrentFaults() Faults { return *r.faults.Load() }

// SetDown starts an outage (why is said to refused clients) or ends it
// (why ""). Starting one resets the pairs open now (with Config.Dynamic)
// and returns how many.
func (r *Relay) SetDown(why string) int {
	if why == "" {
		r.down.Store(nil)
		return 0
	}
	r.down.Store(&why)
	n := 0
	for _, p := range r.pairsNow() {
		p.reset(errors.New(why))
		n++
	}
	return n
}

// SetHold starts (true) or ends a stall: while it lasts new clients wait
// before their target is dialed, and no pair writes anything.
func (r *Relay) SetHold(on bool) {
	if on {
		if r.held.Load() == nil {
			ch := make(chan struct{})
			r.held.Store(&ch)
		}
		return
	}
	if ch := r.held.Swap(nil); ch != nil {
		close(*ch)
	}
}

// waitHeld waits out a stall; false when done closed first.
func (r *Relay) waitHeld(done <-chan struct{}) bool {
	ch := r.held.Load()
	if ch == nil {
		return true
	}
	select {
	case <-*ch:
		return true
	case <-done:
		return false
	}
}

// Down returns why the relay refuses clients now ("" when it does not).
func (r *Relay) Down() string {
	if w := r.down.Load(); w != nil {
		return *w
	}
	return ""
}

// refuse resets a client accepted during an outage.
func (r *Relay) refuse(c net.Conn, why string) {
	if l, ok := c.(interface{ SetLinger(int) error }); ok {
		l.SetLinger(0)
	}
	c.Close()
	r.cfg.Log.Debugf("refused %s: %s", c.RemoteAddr(), why)
}

func (r *Relay) register(p *pair) {
	if r.open == nil {
		return
	}
	r.openMu.Lock()
	r.open[p.id] = p
	r.openMu.Unlock()
}

func (r *Relay) unregister(p *pair) {
	if r.open == nil {
		return
	}
	r.openMu.Lock()
	delete(r.open, p.id)
	r.openMu.Unlock()
}

func (r *Relay) pairsNow() []*pair {
	r.openMu.Lock()
	defer r.openMu.Unlock()
	ps := make([]*pair, 0, len(r.open))
	for _, p := range r.open {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *pair) int { return int(a.id) - int(b.id) })
	return ps
}

// ConnInfo is one open pair, as the control API lists it.
type ConnInfo struct {
	ID        uint64    `json:"id"`
	Client    string    `json:"client"`
	Target    string    `json:"target"`
	Since     time.Time `json:"since"`
	UpBytes   int64     `json:"up_bytes"`
	DownBytes int64     `json:"down_bytes"`
}

// Conns lists the pairs open now (with Config.Dynamic).
func (r *Relay) Conns() []ConnInfo {
	var out []ConnInfo
	for _, p := range r.pairsNow() {
		out = append(out, ConnInfo{ID: p.id, Client: p.client.addr, Target: p.server.addr, Since: p.start,
			UpBytes: p.upBytes.Load(), DownBytes: p.downByte.Load()})
	}
	return out
}

// ResetConn resets pair id; false when no such pair is open.
func (r *Relay) ResetConn(id uint64) bool {
	r.openMu.Lock()
	p := r.open[id]
	r.openMu.Unlock()
	if p == nil {
		return false
	}
	p.reset(errors.New("reset through the control API"))
	return true
}

// Control API bounds.
const (
	maxControlBody  = 64 << 10
	maxControlConns = 16
	controlTimeout  = 5 * time.Second
)

// ControlError is a refused control request: Status is its HTTP status.
type controlError struct {
	status int
	msg    string
}

func (e *controlError) Error() string { return e.msg }

// ServeControl serves the control API on ln until ctx ends: a small
// HTTP/1.1 JSON API, one request per connection.
//
//	GET    /faults      the faults in force, as flags: {"faults":{"delay":["up:200ms"]},"args":"--delay up:200ms","down":""}
//	PUT    /faults      replace them: a body like {"delay":["up:200ms"],"drop":["5%"]} ({} clears)
//	GET    /conns       the open pairs: {"conns":[{"id":3,"client":...,"target":...}]}
//	DELETE /conns/ID    reset pair ID
//
// With a token, every request must carry "Authorization: Bearer TOKEN".
// A bad request is answered with its status and {"error":"..."}; the
// relay keeps serving.
func (r *Relay) ServeControl(ctx context.Context, ln net.Listener, token string) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	sem := make(chan struct{}, maxControlConns)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond) // out of descriptors: try again
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			c.Close() // more callers than a human and a script make
			continue
		}
		go func() {
			defer func() { <-sem }()
			r.controlConn(c, token)
		}()
	}
}

// controlRequest is one parsed HTTP request.
type controlRequest struct {
	method, path, auth string
	body               []byte
}

func (r *Relay) controlConn(c net.Conn, token string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(controlTimeout))
	req, err := readControlRequest(bufio.NewReaderSize(c, 4096))
	status, body := 200, any(nil)
	if err == nil && token != "" && subtle.ConstantTimeCompare([]byte(req.auth), []byte("Bearer "+token)) != 1 {
		err = &controlError{401, "missing or wrong token (send Authorization: Bearer TOKEN)"}
	}
	if err == nil {
		body, err = r.control(req)
	}
	if err != nil {
		var ce *controlError
		if !errors.As(err, &ce) {
			ce = &controlError{400, err.Error()}
		}
		status, body = ce.status, map[string]string{"error": ce.msg}
		if req != nil {
			r.cfg.Log.Notef("control: %s %s: %s", req.method, req.path, ce.msg)
		} else {
			r.cfg.Log.Notef("control: %s: %s", c.RemoteAddr(), ce.msg)
		}
	}
	b, _ := json.Marshal(body)
	b = append(b, '\n')
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, statusText(status), len(b), b)
}

func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 413:
		return "Payload Too Large"
	}
	return "Error"
}

// readControlRequest reads a request line, headers and a Content-Length body.
func readControlRequest(br *bufio.Reader) (*controlRequest, error) {
	line, err := readLine(br)
	if err != nil {
		return nil, &controlError{400, "no request: " + err.Error()}
	}
	parts := strings.Fields(line)
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/1.") {
		return nil, &controlError{400, fmt.Sprintf("not an HTTP/1.1 request line: %.80q", line)}
	}
	req := &controlRequest{method: parts[0], path: parts[1]}
	length := 0
	for n := 0; ; n++ {
		h, err := readLine(br)
		if err != nil {
			return req, &controlError{400, "headers cut short"}
		}
		if h == "" {
			break
		}
		if n > 64 {
			return req, &controlError{400, "too many headers"}
		}
		k, v, _ := strings.Cut(h, ":")
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "content-length":
			if length, err = strconv.Atoi(v); err != nil || length < 0 {
				return req, &controlError{400, "bad Content-Length"}
			}
			if length > maxControlBody {
				return req, &controlError{413, fmt.Sprintf("a body of %d bytes is more than %d", length, maxControlBody)}
			}
		case "authorization":
			req.auth = v
		case "transfer-encoding":
			return req, &controlError{400, "send the body with a Content-Length, not chunked"}
		}
	}
	req.body = make([]byte, length)
	if _, err := io.ReadFull(br, req.body); err != nil {
		return req, &controlError{400, "body cut short"}
	}
	return req, nil
}

// readLine reads one CRLF (or LF) line of at most 8 KiB.
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", errors.New("line too long")
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// control answers one request.
func (r *Relay) control(req *controlRequest) (any, error) {
	path, _, _ := strings.Cut(req.path, "?")
	switch {
	case path == "/faults":
		switch req.method {
		case "GET":
		case "PUT", "POST":
			var spec FaultSpecs
			dec := json.NewDecoder(strings.NewReader(string(req.body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&spec); err != nil {
				return nil, &controlError{400, "bad body: " + strings.TrimPrefix(err.Error(), "json: ") +
					` (want {"delay":["up:200ms"],"drop":["5%"],...} with the relay's fault flags as keys)`}
			}
			f, err := ParseFaults(spec)
			if err != nil {
				return nil, &controlError{400, err.Error()}
			}
			r.SetFaults(f)
			r.cfg.Log.Notef("control: faults now: %s", describe(f))
		default:
			return nil, &controlError{405, req.method + " /faults: want GET or PUT"}
		}
		f := r.CurrentFaults()
		return map[string]any{"faults": f.Specs(), "args": strings.Join(f.Specs().Args(), " "), "down": r.Down()}, nil
	case path == "/conns":
		if req.method != "GET" {
			return nil, &controlError{405, req.method + " /conns: want GET"}
		}
		conns := r.Conns()
		if conns == nil {
			conns = []ConnInfo{}
		}
		return map[string]any{"conns": conns}, nil
	case strings.HasPrefix(path, "/conns/"):
		id, err := strconv.ParseUint(strings.TrimPrefix(path, "/conns/"), 10, 64)
		if err != nil {
			return nil, &controlError{400, fmt.Sprintf("bad connection id in %q", path)}
		}
		if req.method != "DELETE" {
			return nil, &controlError{405, req.method + " " + path + ": want DELETE"}
		}
		if !r.ResetConn(id) {
			return nil, &controlError{404, fmt.Sprintf("no connection %d is open", id)}
		}
		return map[string]any{"reset": id}, nil
	}
	return nil, &controlError{404, fmt.Sprintf("no %s here (want /faults or /conns)", path)}
}

// Loopback reports whether a control address binds loopback only (where a
// token is not required).
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsLoopback()
}
