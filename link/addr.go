// Package link turns wirecat addresses into connections: it parses
// `[scheme://]host:port`, dials and listens on TCP, UDP, TLS and Unix sockets,
// builds TLS configurations (CA files, pins, mTLS, ephemeral self-signed
// certificates) and names every failure in one line.
//
// Address decisions, where SPEC.md is silent:
//   - schemes are case-insensitive and printed in lower case;
//   - an explicit scheme always wins over the -u flag (`-u tcp://h:1` is TCP);
//   - ports are 0..65535, or a service name (`http`, `ssh`) resolved to its number;
//   - `unix:///abs.sock`, `unix://rel.sock`, `unix:rel.sock` and `unix:/abs.sock`
//     all work (the same for unixgram); a path starting with `@` is a Linux
//     abstract socket;
//   - a scheme-less address is never a Unix path: `/tmp/x.sock` is an error
//     that suggests `unix:///tmp/x.sock`;
//   - brackets are only for IPv6 literals, and IPv6 literals need them;
//   - `serial:/dev/ttyUSB0` and `serial:///dev/ttyUSB0` name a serial port,
//     options as a query (see ParseSerialQuery); `pty:` and `pty:/path`
//     a pseudo-terminal wirecat creates (see tty.go).
package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ErrBadAddr is matched (errors.Is) by every error Parse returns.
var ErrBadAddr = errors.New("bad address")

// AddrError says what is wrong with an address; it quotes the address as given.
type AddrError struct {
	Addr   string // the address as the user wrote it
	Reason string // what is wrong, lower case
}

func (e *AddrError) Error() string { return fmt.Sprintf("bad address %q: %s", e.Addr, e.Reason) }

// Unwrap makes errors.Is(err, ErrBadAddr) hold.
func (e *AddrError) Unwrap() error { return ErrBadAddr }

// Addr is a parsed address. Host and Port are set for the IP schemes (Host may
// be empty: every interface), Path for unix, unixgram, serial and pty.
type Addr struct {
	Scheme string // tcp tcp4 tcp6 udp udp4 udp6 tls dtls unix unixgram serial pty ws wss
	Host   string // without brackets; may carry an IPv6 zone
	Port   string // decimal, 0..65535
	Path   string // unix socket path (`@name`: abstract), device, or pty symlink; ws/wss: the URL path and query, `/` at least
	Query  string // serial options in canonical order (`baud=9600&parity=even`)
}

// maxUnixPath is sun_path on Linux less its terminating NUL.
const maxUnixPath = 107

const schemeList = "tcp, tcp4, tcp6, udp, udp4, udp6, tls, dtls, unix, unixgram, serial, pty, ws, wss"

// Network is the Go network name (tls, ws and wss dial "tcp", dtls "udp").
func (a Addr) Network() string {
	switch a.Scheme {
	case "tls", "ws", "wss":
		return "tcp"
	case "dtls":
		return "udp"
	}
	return a.Scheme
}

// Transport is the family without the IP version: tcp, udp, tls, dtls, unix, unixgram, ws, wss.
func (a Addr) Transport() string {
	return strings.TrimRight(a.Scheme, "46")
}

// Stream reports a byte-stream transport (tcp*, tls, unix). WebSocket is
// neither a stream nor a datagram transport: see IsWebSocket.
func (a Addr) Stream() bool {
	switch a.Scheme {
	case "tcp", "tcp4", "tcp6", "tls", "unix", "serial", "pty":
		return true
	}
	return false
}

// IsTTY reports a serial port or a pseudo-terminal: a local stream that is
// opened, not connected to.
func (a Addr) IsTTY() bool { return a.Scheme == "serial" || a.Scheme == "pty" }

// Packet reports a datagram transport (udp*, unixgram).
func (a Addr) Packet() bool {
	switch a.Scheme {
	case "udp", "udp4", "udp6", "unixgram":
		return true
	}
	return false
}

// Datagram reports a transport that carries whole messages, each read one
// datagram: udp*, unixgram, and dtls (which listens through Listen, as a
// stream transport does, since each sender becomes a connection).
func (a Addr) Datagram() bool {
	return a.Packet() || a.Scheme == "dtls"
}

// IsWebSocket reports ws and wss: a connection of messages (one Read, one
// message; one Write, one message) that ends with a close, served by Listen.
func (a Addr) IsWebSocket() bool { return a.Scheme == "ws" || a.Scheme == "wss" }

// IsUnix reports a Unix-domain socket address.
func (a Addr) IsUnix() bool { return a.Scheme == "unix" || a.Scheme == "unixgram" }

// HostPort is what net.Dial wants: `host:port`, `[v6]:port`, or the socket path.
func (a Addr) HostPort() string {
	if a.IsUnix() || a.IsTTY() {
		return a.Path
	}
	return net.JoinHostPort(a.Host, a.Port)
}

// String is the canonical form, which Parse reads back to the same Addr:
// `tcp://127.0.0.1:5000`, `udp://[::1]:53`, `unix:///tmp/x.sock`.
func (a Addr) String() string {
	switch {
	case a.Scheme == "":
		return ""
	case a.IsTTY():
		return ttyString(a)
	}
	if a.IsWebSocket() {
		return a.Scheme + "://" + a.HostPort() + a.Path
	}
	return a.Scheme + "://" + a.HostPort()
}

// IsMulticast reports a UDP address whose host is a multicast group literal.
func (a Addr) IsMulticast() bool {
	if a.IsUnix() || a.IsTTY() {
		return false
	}
	ip, err := netip.ParseAddr(a.Host)
	return err == nil && ip.IsMulticast()
}

// IsLoopback reports whether only this machine can reach a listener on a:
// a loopback literal, `localhost`, or a Unix socket. `:port` (every interface)
// is not loopback. Used to warn before exposing --exec to the network.
func IsLoopback(a Addr) bool {
	if a.IsUnix() || a.IsTTY() {
		return true
	}
	h := strings.ToLower(strings.TrimSuffix(a.Host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(a.Host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Parse reads `[scheme://]host:port` (or `unix:///path`). Without a scheme the
// address is tcp, or udp when udp is true (the netcat -u habit); an explicit
// scheme wins over udp. Every error wraps ErrBadAddr and quotes s.
func Parse(s string, udp bool) (Addr, error) {
	bad := func(format string, args ...any) (Addr, error) {
		return Addr{}, &AddrError{Addr: s, Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return bad("empty (want host:port, e.g. 127.0.0.1:5000)")
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }); i >= 0 {
		return bad("contains a control character at byte %d", i)
	}

	scheme, rest, explicit := splitScheme(s)
	if !explicit {
		scheme = "tcp"
		if udp {
			scheme = "udp"
		}
	}
	switch scheme {
	case "unix", "unixgram":
		if rest == "" {
			return bad("missing socket path (e.g. %s:///tmp/wirecat.sock)", scheme)
		}
		if len(rest) > maxUnixPath {
			return bad("socket path is %d bytes, longer than the %d a unix socket allows", len(rest), maxUnixPath)
		}
		return Addr{Scheme: scheme, Path: rest}, nil
	case "serial", "pty":
		return parseTTY(s, scheme, rest)
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6", "tls", "dtls":
	case "ws", "wss":
		// A URL: the path (and query) is the resource; the port may be
		// left to the scheme's own (80, 443).
		path := "/"
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			rest, path = rest[:i], rest[i:]
			if path[0] == '?' {
				path = "/" + path
			}
		}
		if i := strings.IndexByte(path, '#'); i >= 0 {
			return bad("unexpected fragment %q (a WebSocket URL has none)", path[i:])
		}
		if rest != "" && !strings.HasSuffix(rest, "]") && strings.Count(rest, ":") == 0 {
			rest += map[string]string{"ws": ":80", "wss": ":443"}[scheme]
		}
		a, err := Parse("tcp://"+rest, false)
		if err != nil {
			return bad("%s", err.(*AddrError).Reason)
		}
		a.Scheme, a.Path = scheme, path
		return a, nil
	default:
		return bad("unknown scheme %q (want %s)", scheme, schemeList)
	}

	if rest == "" {
		return bad("missing host:port after %s://", scheme)
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		if !explicit && (strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".")) {
			return bad("missing port (for a unix socket write unix://%s)", s)
		}
		return bad("unexpected %q (an address has no path)", rest[i:])
	}

	var host, port string
	bracketed := strings.HasPrefix(rest, "[")
	if bracketed {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return bad("missing ] after IPv6 address")
		}
		host, rest = rest[1:end], rest[end+1:]
		if rest == "" {
			return bad("missing port (want host:port, e.g. [%s]:5000)", host)
		}
		if rest[0] != ':' {
			return bad("unexpected %q after ] (want [ipv6]:port)", rest)
		}
		port = rest[1:]
	} else {
		switch strings.Count(rest, ":") {
		case 0:
			if strings.Trim(rest, "0123456789") == "" {
				return bad("missing host (want host:port, e.g. 127.0.0.1:%s, or HOST PORT)", rest)
			}
			return bad("missing port (want host:port, e.g. %s:5000)", rest)
		case 1:
			host, port, _ = strings.Cut(rest, ":")
		default:
			if sc, rest2, _ := strings.Cut(rest, ":"); !explicit && knownScheme(strings.ToLower(sc)) {
				return bad("missing // after the scheme (want %s://%s)", strings.ToLower(sc), rest2)
			}
			return bad("IPv6 address needs brackets (want [ipv6]:port, e.g. [::1]:5000)")
		}
	}
	if port == "" {
		example := host
		if bracketed {
			example = "[" + host + "]"
		}
		return bad("missing port (want host:port, e.g. %s:5000)", example)
	}

	if bracketed {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() {
			return bad("%q in brackets is not an IPv6 address", host)
		}
	} else if err := checkHost(host); err != "" {
		return bad("%s", err)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		switch {
		case strings.HasSuffix(scheme, "4") && ip.Is6() && !ip.Is4In6():
			return bad("%s needs an IPv4 address, not %s", scheme, host)
		case strings.HasSuffix(scheme, "6") && ip.Is4():
			return bad("%s needs an IPv6 address, not %s", scheme, host)
		}
	}

	p, reason := parsePort(port, scheme)
	if reason != "" {
		return bad("%s", reason)
	}
	return Addr{Scheme: scheme, Host: host, Port: p}, nil
}

func knownScheme(s string) bool {
	switch s {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6", "tls", "dtls", "unix", "unixgram", "serial", "pty", "ws", "wss":
		return true
	}
	return false
}

// splitScheme finds `scheme://` or the socat-style `unix:`, `unixgram:`,
// `serial:` and `pty:` prefixes.
func splitScheme(s string) (scheme, rest string, ok bool) {
	if i := strings.Index(s, "://"); i >= 0 {
		return strings.ToLower(s[:i]), s[i+3:], true
	}
	if i := strings.IndexByte(s, ':'); i > 0 {
		if sc := strings.ToLower(s[:i]); sc == "unix" || sc == "unixgram" || sc == "serial" || sc == "pty" {
			return sc, s[i+1:], true
		}
	}
	return "", s, false
}

// checkHost accepts an empty host (every interface), an IP literal or a DNS
// name; it returns why host is unusable, or "".
func checkHost(host string) string {
	if host == "" {
		return ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	if len(host) > 253 {
		return "host name longer than 253 characters"
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		default:
			return fmt.Sprintf("invalid character %q in host %q", c, host)
		}
	}
	if strings.HasPrefix(host, ".") || strings.Contains(host, "..") {
		return fmt.Sprintf("empty label in host %q", host)
	}
	return ""
}

// parsePort returns the port as canonical decimal, or why it is unusable.
func parsePort(port, scheme string) (string, string) {
	digits := strings.TrimPrefix(strings.TrimPrefix(port, "-"), "+")
	if digits != "" && strings.Trim(digits, "0123456789") == "" {
		n, err := strconv.ParseUint(digits, 10, 64)
		if err != nil || n > 65535 || digits != port {
			return "", fmt.Sprintf("port %s out of range 0-65535", port)
		}
		return strconv.FormatUint(n, 10), ""
	}
	for i := 0; i < len(port); i++ {
		c := port[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", fmt.Sprintf("port %q is not a number", port)
		}
	}
	network := "tcp"
	if strings.HasPrefix(scheme, "udp") || scheme == "dtls" {
		network = "udp"
	}
	n, err := net.LookupPort(network, port)
	if err != nil {
		return "", fmt.Sprintf("unknown service %q (want a port number 0-65535)", port)
	}
	return strconv.Itoa(n), ""
}

// ParseListen reads where to listen: what Parse reads, or a bare port
// (`5000`), the `nc -l 5000` habit, which means every interface.
func ParseListen(s string, udp bool) (Addr, error) {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		a, err := Parse(":"+s, udp)
		if err != nil {
			return Addr{}, &AddrError{Addr: s, Reason: err.(*AddrError).Reason}
		}
		return a, nil
	}
	return Parse(s, udp)
}

// JoinHostPort reads the netcat two-argument form `HOST PORT`: the host
// may carry a scheme (`tls://example.com 443`) and an IPv6 literal needs no
// brackets (`::1 5000`). Errors quote both arguments as given.
func JoinHostPort(host, port string, udp bool) (Addr, error) {
	scheme, h, explicit := splitScheme(host)
	given := host + " " + port
	if explicit && (scheme == "unix" || scheme == "unixgram") {
		return Addr{}, &AddrError{Addr: given, Reason: "a unix socket has a path, not a port"}
	}
	if explicit && (scheme == "serial" || scheme == "pty") {
		return Addr{}, &AddrError{Addr: given, Reason: "a " + scheme + " has a path, not a port"}
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if strings.ContainsAny(h, "[]/") {
		return Addr{}, &AddrError{Addr: given, Reason: fmt.Sprintf("unexpected host %q (want HOST PORT, e.g. 127.0.0.1 5000)", host)}
	}
	if strings.Contains(h, ":") {
		if _, err := netip.ParseAddr(h); err != nil {
			return Addr{}, &AddrError{Addr: given, Reason: fmt.Sprintf("host %q already has a port (want HOST PORT or host:port)", host)}
		}
	}
	s := net.JoinHostPort(h, port)
	if explicit {
		s = scheme + "://" + s
	}
	a, err := Parse(s, udp)
	if err != nil {
		return Addr{}, &AddrError{Addr: given, Reason: err.(*AddrError).Reason}
	}
	return a, nil
}
