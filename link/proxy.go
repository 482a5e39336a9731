package link

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Proxy is a proxy that TCP dials (tcp:// and tls://) go through:
// socks5://[user:pass@]host:port (RFC 1928, with RFC 1929 credentials) or
// http://[user:pass@]host:port (an HTTP CONNECT tunnel). The proxy
// resolves the target's name, so a name known only behind the proxy works.
type Proxy struct {
	Scheme     string // socks5 or http (socks5h is read as socks5)
	Host       string // host:port of the proxy
	User, Pass string
	From       string // where it came from: "--proxy", "ALL_PROXY", ...
}

// ErrProxyAuth is matched by a *ProxyError when the proxy wants credentials
// or refused the ones given.
var ErrProxyAuth = errors.New("proxy authentication required")

// ProxyError is a proxy that did not open the tunnel, and why:
// `proxy socks5://127.0.0.1:1080 refused 10.0.0.5:502: connection refused`.
type ProxyError struct {
	Proxy  string // the proxy, without its password
	Reason string
	Auth   bool // the proxy asks for credentials, or refused them
}

func (e *ProxyError) Error() string { return "proxy " + e.Proxy + " " + e.Reason }

// Is matches ErrProxyAuth for an authentication failure.
func (e *ProxyError) Is(target error) bool { return e.Auth && target == ErrProxyAuth }

// ParseProxy reads a proxy URL. A missing port is the scheme's usual one
// (1080 for SOCKS5, 8080 for HTTP).
func ParseProxy(s string) (*Proxy, error) {
	bad := func(why string) (*Proxy, error) {
		return nil, &badProxy{fmt.Sprintf("proxy %q: %s", redact(s), why)}
	}
	if !strings.Contains(s, "://") {
		return bad("want socks5://[user:pass@]host:port or http://host:port")
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("not a URL")
	}
	p := &Proxy{Scheme: strings.ToLower(u.Scheme)}
	port := "1080"
	switch p.Scheme {
	case "socks5", "socks5h":
		p.Scheme = "socks5"
	case "http":
		port = "8080"
	case "https":
		return bad("a TLS connection to the proxy itself is not supported (use http://, the tunnel still carries your TLS)")
	default:
		return bad("unknown scheme " + u.Scheme + " (want socks5 or http)")
	}
	if u.Hostname() == "" {
		return bad("no host")
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return bad("a proxy URL has no path or query")
	}
	if u.Port() != "" {
		port = u.Port()
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return bad("port " + port + " is not 1-65535")
		}
	}
	p.Host = net.JoinHostPort(u.Hostname(), port)
	if u.User != nil {
		p.User = u.User.Username()
		p.Pass, _ = u.User.Password()
		if p.Scheme == "socks5" && (len(p.User) > 255 || len(p.Pass) > 255) {
			return bad("SOCKS5 user name and password are at most 255 bytes each")
		}
	}
	return p, nil
}

// badProxy is a proxy URL that cannot be used: a usage error.
type badProxy struct{ msg string }

func (e *badProxy) Error() string        { return e.msg }
func (e *badProxy) Is(target error) bool { return target == ErrBadOption }

// redact hides a password in a proxy URL given by the user.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return s
}

// String is the proxy's URL without its password.
func (p *Proxy) String() string {
	s := p.Scheme + "://"
	if p.User != "" {
		s += url.User(p.User).String() + "@"
	}
	return s + p.Host
}

func (p *Proxy) fail(auth bool, format string, args ...any) error {
	return &ProxyError{Proxy: p.String(), Reason: fmt.Sprintf(format, args...), Auth: auth}
}

// tunnel opens a connection to target (host:port) through the proxy, over
// c, a connection to the proxy. It is bounded by ctx.
func (p *Proxy) tunnel(ctx context.Context, c net.Conn, target string) error {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	// A canceled context (a signal) interrupts a proxy that never answers.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var err error
	if p.Scheme == "http" {
		err = p.connect(c, target)
	} else {
		err = p.socks5(c, target)
	}
	c.SetDeadline(time.Time{})
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// connect asks an HTTP proxy for a tunnel (CONNECT host:port HTTP/1.1).
func (p *Proxy) connect(c net.Conn, target string) error {
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if p.User != "" {
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(p.User+":"+p.Pass)) + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return err
	}
	// Read the answer byte by byte up to its blank line, so nothing the
	// target sends right after it is swallowed by a buffer. 16 KiB bounds it.
	resp, err := http.ReadResponse(bufio.NewReader(io.LimitReader(&oneByte{c: c}, 16<<10)), &http.Request{Method: "CONNECT"})
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return p.fail(false, "closed the connection instead of answering CONNECT %s", target)
		}
		var ne net.Error
		if errors.As(err, &ne) {
			return err
		}
		return p.fail(false, "answered CONNECT %s with something that is not HTTP (is it a SOCKS proxy? use socks5://)", target)
	}
	switch {
	case resp.StatusCode == http.StatusProxyAuthRequired && p.User == "":
		return p.fail(true, "asks for credentials (407 Proxy Authentication Required): give them as http://user:pass@host:port")
	case resp.StatusCode == http.StatusProxyAuthRequired:
		return p.fail(true, "refused the credentials of user %q (407 Proxy Authentication Required)", p.User)
	case resp.StatusCode/100 != 2:
		return p.fail(false, "refused CONNECT %s: %s", target, resp.Status)
	}
	return nil
}

// oneByte reads one byte per Read, so the HTTP reader never reads past the
// proxy's answer into the tunnelled data.
type oneByte struct{ c net.Conn }

func (o *oneByte) Read(b []byte) (int, error) {
	if len(b) > 1 {
		b = b[:1]
	}
	return o.c.Read(b)
}

// socks5Replies are RFC 1928's reply codes, in a few words.
var socks5Replies = [...]string{
	1: "general SOCKS server failure",
	2: "connection not allowed by ruleset",
	3: "network unreachable",
	4: "host unreachable",
	5: "connection refused",
	6: "TTL expired",
	7: "command not supported",
	8: "address type not supported",
}

// socks5 asks a SOCKS5 proxy to CONNECT to target, with credentials if given.
func (p *Proxy) socks5(c net.Conn, target string) error {
	host, portS, err := net.SplitHostPort(target)
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(portS)
	methods := []byte{5, 1, 0} // version 5, one method: no authentication
	if p.User != "" {
		methods = []byte{5, 2, 0, 2} // or user/password
	}
	if _, err := c.Write(methods); err != nil {
		return err
	}
	var b [4]byte
	if err := p.readFull(c, b[:2], "the greeting"); err != nil {
		return err
	}
	if b[0] != 5 {
		return p.fail(false, "is not a SOCKS5 proxy (version %d in its answer; an HTTP proxy? use http://)", b[0])
	}
	switch b[1] {
	case 0:
	case 2:
		if p.User == "" {
			return p.fail(true, "asks for a user name and password: give them as socks5://user:pass@host:port")
		}
		req := append([]byte{1, byte(len(p.User))}, p.User...)
		req = append(append(req, byte(len(p.Pass))), p.Pass...)
		if _, err := c.Write(req); err != nil {
			return err
		}
		if err := p.readFull(c, b[:2], "the credentials"); err != nil {
			return err
		}
		if b[1] != 0 {
			return p.fail(true, "refused the credentials of user %q", p.User)
		}
	case 0xff:
		if p.User == "" {
			return p.fail(true, "asks for a user name and password: give them as socks5://user:pass@host:port")
		}
		return p.fail(true, "accepts neither anonymous nor user/password login")
	default:
		return p.fail(false, "chose an authentication method wirecat does not offer (%d)", b[1])
	}
	req := []byte{5, 1, 0} // CONNECT
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Is4() {
			req = append(append(req, 1), ip.AsSlice()...)
		} else {
			req = append(append(req, 4), ip.AsSlice()...)
		}
	} else {
		if len(host) > 255 {
			return p.fail(false, "cannot take a host name over 255 bytes")
		}
		req = append(append(req, 3, byte(len(host))), host...)
	}
	req = append(req, byte(port>>8), byte(port))
	if _, err := c.Write(req); err != nil {
		return err
	}
	if err := p.readFull(c, b[:4], "CONNECT "+target); err != nil {
		return err
	}
	if b[1] != 0 {
		why := fmt.Sprintf("reply %d", b[1])
		if int(b[1]) < len(socks5Replies) {
			why = socks5Replies[b[1]]
		}
		return p.fail(false, "refused %s: %s", target, why)
	}
	// Skip the bound address the proxy reports.
	var skip int
	switch b[3] {
	case 1:
		skip = 4
	case 4:
		skip = 16
	case 3:
		var n [1]byte
		if err := p.readFull(c, n[:], "CONNECT "+target); err != nil {
			return err
		}
		skip = int(n[0])
	default:
		return p.fail(false, "sent an unknown address type %d", b[3])
	}
	rest := make([]byte, skip+2)
	return p.readFull(c, rest, "CONNECT "+target)
}

// readFull reads an answer; a proxy that hangs up says what it was asked.
func (p *Proxy) readFull(c net.Conn, b []byte, what string) error {
	_, err := io.ReadFull(c, b)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return p.fail(false, "closed the connection instead of answering %s", what)
	}
	return err
}

// ProxyFor is the proxy for a dial to a from the environment, as curl reads
// it: HTTPS_PROXY for tls:// and wss://, then ALL_PROXY, for every TCP dial (either
// spelling, upper or lower case), unless NO_PROXY names the host. Loopback
// addresses and "localhost" are never proxied from the environment. nil:
// no proxy.
func ProxyFor(a Addr, getenv func(string) string) (*Proxy, error) {
	if !a.OverTCP() {
		return nil, nil
	}
	env := func(name string) (string, string) {
		if v := getenv(name); v != "" {
			return v, name
		}
		l := strings.ToLower(name)
		return getenv(l), l
	}
	v, from := "", ""
	if a.Scheme == "tls" || a.Scheme == "wss" {
		v, from = env("HTTPS_PROXY")
	}
	if v == "" {
		v, from = env("ALL_PROXY")
	}
	if v == "" {
		return nil, nil
	}
	if no, _ := env("NO_PROXY"); noProxy(a.Host, no) {
		return nil, nil
	}
	p, err := ParseProxy(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	p.From = from
	return p, nil
}

// noProxy reports a host the environment's proxy must not be used for:
// loopback, or listed in NO_PROXY (comma-separated: *, a host, .domain or
// domain for its subdomains too, an IP, or a CIDR).
func noProxy(host, list string) bool {
	host = strings.ToLower(strings.Trim(host, "[]"))
	ip, ipErr := netip.ParseAddr(host)
	if host == "localhost" || ipErr == nil && ip.IsLoopback() {
		return true
	}
	for _, e := range strings.Split(list, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		if h, _, err := net.SplitHostPort(e); err == nil {
			e = h // a port in NO_PROXY is ignored
		}
		e = strings.Trim(e, "[]")
		switch {
		case e == "":
		case e == "*":
			return true
		case strings.Contains(e, "/"):
			if pfx, err := netip.ParsePrefix(e); err == nil && ipErr == nil && pfx.Contains(ip) {
				return true
			}
		case host == strings.TrimPrefix(e, "."), strings.HasSuffix(host, "."+strings.TrimPrefix(e, ".")):
			return true
		}
	}
	return false
}

// OverTCP reports an address whose connection is a TCP one (tcp, tls): the
// ones a proxy can carry.
func (a Addr) OverTCP() bool { return strings.HasPrefix(a.Network(), "tcp") }
