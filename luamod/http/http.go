// Package http is the HTTP/1.x codec behind the Lua http module (the client
// and the server handler live in package script, on the device scheduler):
// request and response heads, content-length and chunked bodies, a body
// read to the end of the stream, keep-alive.
//
// It is written here rather than taken from net/http: wirecat does not link
// net/http, which would add about 2 MiB to the binary and work at start-up
// (its HTTP/2 bundle's tables), for a device's GET and a board's web server;
// and net/http's server owns its goroutines and connections, where a device
// must own its own. Parsing is strict where a wrong guess would desync the
// stream (a bad chunk size, two different Content-Lengths) and every size is
// bounded.
package http

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// maxHead bounds a request or response head.
const maxHead = 64 << 10

// Header is a message's header fields, names lower-cased; repeated fields
// are joined with ", ".
type Header map[string]string

// Request is a parsed request.
type Request struct {
	Method, Target, Path, Query, Version string
	Header                               Header
	Body                                 []byte
	KeepAlive                            bool // the connection may carry another request
}

// Response is a parsed response.
type Response struct {
	Version   string
	Status    int
	Reason    string
	Header    Header
	Body      []byte
	KeepAlive bool
}

// ErrBadRequest wraps every request framing error.
var ErrBadRequest = errors.New("http: bad request")

func parseHeaders(lines []string) (Header, error) {
	h := Header{}
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("malformed header line %q", l)
		}
		name = strings.ToLower(name)
		value = strings.TrimSpace(value)
		if old, ok := h[name]; ok {
			if name == "content-length" && old != value {
				return nil, errors.New("two different Content-Length headers")
			}
			if name != "content-length" {
				value = old + ", " + value
			}
		}
		h[name] = value
	}
	return h, nil
}

// bodyKind is how a message's body is delimited.
func (h Header) bodyKind() (chunked bool, length int64, err error) {
	if te, ok := h["transfer-encoding"]; ok {
		if !strings.EqualFold(strings.TrimSpace(te), "chunked") {
			return false, 0, fmt.Errorf("unsupported Transfer-Encoding %q", te)
		}
		return true, -1, nil
	}
	if cl, ok := h["content-length"]; ok {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return false, 0, fmt.Errorf("bad Content-Length %q", cl)
		}
		return false, n, nil
	}
	return false, -1, nil
}

// keepAlive: HTTP/1.1 keeps the connection unless told to close; 1.0 only
// when asked to keep it.
func keepAlive(version string, h Header) bool {
	conn := strings.ToLower(h["connection"])
	if version == "HTTP/1.1" {
		return !strings.Contains(conn, "close")
	}
	return strings.Contains(conn, "keep-alive")
}

// FrameRequest returns the size of the whole request at the start of buf,
// 0 while more bytes are needed.
func FrameRequest(buf []byte, max int) (int, error) {
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		if len(buf) > maxHead {
			return 0, fmt.Errorf("%w: a head over %d bytes", ErrBadRequest, maxHead)
		}
		return 0, nil
	}
	head := end + 4
	// A head that does not parse is cut here, without a body: ParseRequest
	// then says what is wrong, and the server answers 400 and hangs up.
	lines := strings.Split(string(buf[:end]), "\r\n")
	h, err := parseHeaders(lines[1:])
	if err != nil {
		return head, nil
	}
	chunked, n, err := h.bodyKind()
	if err != nil {
		return head, nil
	}
	switch {
	case chunked:
		size, _, err := dechunk(buf[head:], max)
		if err != nil || size == 0 {
			return 0, err
		}
		return head + size, nil
	case n < 0: // a request without a length has no body
		return head, nil
	case int64(max) < n:
		return 0, fmt.Errorf("%w: a %d-byte body, over the maximum of %d", ErrBadRequest, n, max)
	case int64(len(buf)-head) < n:
		return 0, nil
	}
	return head + int(n), nil
}

// dechunk reads a chunked body at the start of b: the bytes it used (0 while
// more are needed) and the body.
func dechunk(b []byte, max int) (int, []byte, error) {
	var body []byte
	pos := 0
	for {
		i := bytes.Index(b[pos:], []byte("\r\n"))
		if i < 0 {
			if len(b)-pos > 1024 {
				return 0, nil, fmt.Errorf("%w: a chunk size line over 1024 bytes", ErrBadRequest)
			}
			return 0, nil, nil
		}
		line, _, _ := strings.Cut(string(b[pos:pos+i]), ";") // chunk extensions are ignored
		size, err := strconv.ParseUint(strings.TrimSpace(line), 16, 31)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: bad chunk size %q", ErrBadRequest, line)
		}
		pos += i + 2
		if size == 0 { // the trailer: lines up to an empty one
			for {
				j := bytes.Index(b[pos:], []byte("\r\n"))
				if j < 0 {
					return 0, nil, nil
				}
				pos += j + 2
				if j == 0 {
					if body == nil {
						body = []byte{}
					}
					return pos, body, nil
				}
			}
		}
		if len(body)+int(size) > max {
			return 0, nil, fmt.Errorf("%w: a chunked body over the maximum of %d bytes", ErrBadRequest, max)
		}
		if len(b)-pos < int(size)+2 {
			return 0, nil, nil
		}
		body = append(body, b[pos:pos+int(size)]...)
		pos += int(size)
		if b[pos] != '\r' || b[pos+1] != '\n' {
			return 0, nil, fmt.Errorf("%w: a chunk not followed by CRLF", ErrBadRequest)
		}
		pos += 2
	}
}

// ParseRequest parses a whole request, as FrameRequest cut it.
func ParseRequest(raw []byte, max int) (*Request, error) {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, fmt.Errorf("%w: no end of head", ErrBadRequest)
	}
	lines := strings.Split(string(raw[:end]), "\r\n")
	parts := strings.Split(lines[0], " ")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || !strings.HasPrefix(parts[2], "HTTP/1.") {
		return nil, fmt.Errorf("%w: malformed request line %q", ErrBadRequest, lines[0])
	}
	h, err := parseHeaders(lines[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	r := &Request{Method: parts[0], Target: parts[1], Version: parts[2], Header: h}
	r.Path, r.Query, _ = strings.Cut(r.Target, "?")
	r.KeepAlive = keepAlive(r.Version, h)
	body := raw[end+4:]
	chunked, _, err := h.bodyKind()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if chunked {
		_, body, err = dechunk(body, max)
		if err != nil {
			return nil, err
		}
	}
	r.Body = body
	return r, nil
}

// ReadResponse reads one response to a request with method from br. A body
// with neither a length nor chunks runs to the end of the stream (and the
// connection cannot be kept). Bodies over max bytes are an error.
func ReadResponse(br *bufio.Reader, method string, max int) (*Response, error) {
	var lines []string
	size := 0
	for {
		l, err := br.ReadString('\n')
		size += len(l)
		if size > maxHead {
			return nil, fmt.Errorf("a response head over %d bytes", maxHead)
		}
		if err != nil {
			if err == io.EOF && size == 0 {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("the response ended in its head: %w", err)
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			if len(lines) == 0 {
				continue // a stray empty line before the status line
			}
			break
		}
		lines = append(lines, l)
	}
	version, rest, _ := strings.Cut(lines[0], " ")
	code, reason, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !strings.HasPrefix(version, "HTTP/1.") || err != nil || status < 100 || status > 999 {
		return nil, fmt.Errorf("malformed status line %q", lines[0])
	}
	h, err := parseHeaders(lines[1:])
	if err != nil {
		return nil, err
	}
	r := &Response{Version: version, Status: status, Reason: reason, Header: h, KeepAlive: keepAlive(version, h)}
	if status < 200 && status != 101 { // 1xx: an interim answer, the real one follows
		return ReadResponse(br, method, max)
	}
	if method == "HEAD" || status == 204 || status == 304 {
		r.Body = []byte{}
		return r, nil
	}
	chunked, n, err := h.bodyKind()
	if err != nil {
		return nil, err
	}
	switch {
	case chunked:
		r.Body, err = readChunked(br, max)
	case n >= 0:
		if n > int64(max) {
			return nil, fmt.Errorf("a %d-byte body, over the maximum of %d", n, max)
		}
		r.Body = make([]byte, n)
		_, err = io.ReadFull(br, r.Body)
		if err != nil {
			err = fmt.Errorf("the body ended after fewer than its %d bytes: %w", n, err)
		}
	default:
		r.KeepAlive = false
		r.Body, err = io.ReadAll(io.LimitReader(br, int64(max)+1))
		if err == nil && len(r.Body) > max {
			err = fmt.Errorf("a body without a length over the maximum of %d bytes", max)
		}
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

func readChunked(br *bufio.Reader, max int) ([]byte, error) {
	body := []byte{}
	for {
		l, err := br.ReadString('\n')
		if err != nil || len(l) > 1024 {
			return nil, fmt.Errorf("a chunked body cut short: %v", err)
		}
		l, _, _ = strings.Cut(strings.TrimRight(l, "\r\n"), ";")
		size, err := strconv.ParseUint(strings.TrimSpace(l), 16, 31)
		if err != nil {
			return nil, fmt.Errorf("bad chunk size %q", l)
		}
		if size == 0 {
			for { // trailer
				t, err := br.ReadString('\n')
				if err != nil {
					return nil, fmt.Errorf("a chunked body cut short: %v", err)
				}
				if strings.TrimRight(t, "\r\n") == "" {
					return body, nil
				}
			}
		}
		if len(body)+int(size) > max {
			return nil, fmt.Errorf("a chunked body over the maximum of %d bytes", max)
		}
		start := len(body)
		body = append(body, make([]byte, size)...)
		if _, err := io.ReadFull(br, body[start:]); err != nil {
			return nil, fmt.Errorf("a chunked body cut short: %v", err)
		}
		var crlf [2]byte
		if _, err := io.ReadFull(br, crlf[:]); err != nil || crlf != [2]byte{'\r', '\n'} {
			return nil, errors.New("a chunk not followed by CRLF")
		}
	}
}

// writeHeaders writes h sorted by name, skipping the names in skip, with
// each name in canonical form (Content-Type).
func writeHeaders(b *bytes.Buffer, h map[string]string, skip ...string) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
next:
	for _, k := range names {
		for _, s := range skip {
			if strings.EqualFold(k, s) {
				continue next
			}
		}
		b.WriteString(canonical(k))
		b.WriteString(": ")
		b.WriteString(h[k])
		b.WriteString("\r\n")
	}
}

func canonical(k string) string {
	b := []byte(strings.ToLower(k))
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		up = c == '-'
	}
	return string(b)
}

// has reports whether h has the field name, in any case.
func has(h map[string]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// BadField is the first header name or value in h that would break the
// message (a CR or LF, a colon or space in a name), or "".
func BadField(h map[string]string) string {
	for k, v := range h {
		if k == "" || strings.ContainsAny(k, "\r\n: \t") || strings.ContainsAny(v, "\r\n") {
			return k
		}
	}
	return ""
}

// WriteRequest is a request's bytes: Host, and Content-Length when there is
// a body or the method usually has one, are added unless h has them.
func WriteRequest(method, target, host string, h map[string]string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, target)
	if !has(h, "host") {
		fmt.Fprintf(&b, "Host: %s\r\n", host)
	}
	if !has(h, "content-length") && !has(h, "transfer-encoding") &&
		(len(body) > 0 || method == "POST" || method == "PUT" || method == "PATCH") {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	writeHeaders(&b, h)
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// WriteResponse is a response's bytes, with its Content-Length and, unless
// keep, Connection: close.
func WriteResponse(status int, h map[string]string, body []byte, keep bool) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, StatusText(status))
	writeHeaders(&b, h, "content-length", "connection", "transfer-encoding")
	fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	if !keep {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

var statusText = map[int]string{
	100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 202: "Accepted",
	204: "No Content", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
	307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized",
	403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
	409: "Conflict", 411: "Length Required", 413: "Content Too Large", 415: "Unsupported Media Type",
	429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
	503: "Service Unavailable", 504: "Gateway Timeout",
}

// StatusText is the reason phrase of a status code ("OK"), "Status" when
// it has none here.
func StatusText(code int) string {
	if s, ok := statusText[code]; ok {
		return s
	}
	return "Status"
}
