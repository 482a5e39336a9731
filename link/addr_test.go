package link

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in     string
		udp    bool
		want   Addr
		canon  string
		stream bool
	}{
		{"127.0.0.1:5000", false, Addr{Scheme: "tcp", Host: "127.0.0.1", Port: "5000"}, "tcp://127.0.0.1:5000", true},
		{"127.0.0.1:5000", true, Addr{Scheme: "udp", Host: "127.0.0.1", Port: "5000"}, "udp://127.0.0.1:5000", false},
		{":5000", false, Addr{Scheme: "tcp", Port: "5000"}, "tcp://:5000", true},
		{":0", true, Addr{Scheme: "udp", Port: "0"}, "udp://:0", false},
		{"localhost:80", false, Addr{Scheme: "tcp", Host: "localhost", Port: "80"}, "tcp://localhost:80", true},
		{"[::1]:8080", false, Addr{Scheme: "tcp", Host: "::1", Port: "8080"}, "tcp://[::1]:8080", true},
		{"tcp6://[::1]:1", false, Addr{Scheme: "tcp6", Host: "::1", Port: "1"}, "tcp6://[::1]:1", true},
		{"[fe80::1%eth0]:7", false, Addr{Scheme: "tcp", Host: "fe80::1%eth0", Port: "7"}, "tcp://[fe80::1%eth0]:7", true},
		{"tcp4://10.0.0.1:65535", false, Addr{Scheme: "tcp4", Host: "10.0.0.1", Port: "65535"}, "tcp4://10.0.0.1:65535", true},
		{"TCP://Host.Example:080", false, Addr{Scheme: "tcp", Host: "Host.Example", Port: "80"}, "tcp://Host.Example:80", true},
		{"tcp://h:1", true, Addr{Scheme: "tcp", Host: "h", Port: "1"}, "tcp://h:1", true}, // explicit scheme beats -u
		{"udp4://239.1.2.3:5353", false, Addr{Scheme: "udp4", Host: "239.1.2.3", Port: "5353"}, "udp4://239.1.2.3:5353", false},
		{"udp6://[ff02::fb]:5353", false, Addr{Scheme: "udp6", Host: "ff02::fb", Port: "5353"}, "udp6://[ff02::fb]:5353", false},
		{"tls://example.com:443", true, Addr{Scheme: "tls", Host: "example.com", Port: "443"}, "tls://example.com:443", true},
		{"tls://example.com:https", false, Addr{Scheme: "tls", Host: "example.com", Port: "443"}, "tls://example.com:443", true},
		{"my_host-1:ssh", false, Addr{Scheme: "tcp", Host: "my_host-1", Port: "22"}, "tcp://my_host-1:22", true},
		{"unix:///tmp/x.sock", false, Addr{Scheme: "unix", Path: "/tmp/x.sock"}, "unix:///tmp/x.sock", true},
		{"unix://rel.sock", true, Addr{Scheme: "unix", Path: "rel.sock"}, "unix://rel.sock", true},
		{"unix:rel.sock", false, Addr{Scheme: "unix", Path: "rel.sock"}, "unix://rel.sock", true},
		{"unix:/abs dir/x.sock", false, Addr{Scheme: "unix", Path: "/abs dir/x.sock"}, "unix:///abs dir/x.sock", true},
		{"unix://@abstract", false, Addr{Scheme: "unix", Path: "@abstract"}, "unix://@abstract", true},
		{"unixgram:///run/d.sock", false, Addr{Scheme: "unixgram", Path: "/run/d.sock"}, "unixgram:///run/d.sock", false},
		{"UNIXGRAM:d.sock", false, Addr{Scheme: "unixgram", Path: "d.sock"}, "unixgram://d.sock", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in, tt.udp)
			if err != nil {
				t.Fatalf("Parse(%q, %v): %v", tt.in, tt.udp, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q, %v) = %+v, want %+v", tt.in, tt.udp, got, tt.want)
			}
			if got.String() != tt.canon {
				t.Errorf("String() = %q, want %q", got.String(), tt.canon)
			}
			if got.Stream() != tt.stream || got.Packet() == tt.stream {
				t.Errorf("Stream()=%v Packet()=%v, want stream %v", got.Stream(), got.Packet(), tt.stream)
			}
			back, err := Parse(got.String(), !tt.udp)
			if err != nil || back != got {
				t.Errorf("reparse %q = %+v, %v; want %+v", got.String(), back, err, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `bad address "": empty (want host:port, e.g. 127.0.0.1:5000)`},
		{"127.0.0.1", `bad address "127.0.0.1": missing port (want host:port, e.g. 127.0.0.1:5000)`},
		{"localhost:", `bad address "localhost:": missing port (want host:port, e.g. localhost:5000)`},
		{"[::1]", `bad address "[::1]": missing port (want host:port, e.g. [::1]:5000)`},
		{"[::1]:", `bad address "[::1]:": missing port (want host:port, e.g. [::1]:5000)`},
		{"tcp://h:99999", `bad address "tcp://h:99999": port 99999 out of range 0-65535`},
		{"h:65536", `bad address "h:65536": port 65536 out of range 0-65535`},
		{"h:-1", `bad address "h:-1": port -1 out of range 0-65535`},
		{"h:123456789012345678901234567890", `bad address "h:123456789012345678901234567890": port 123456789012345678901234567890 out of range 0-65535`},
		{"h:nosuchservice", `bad address "h:nosuchservice": unknown service "nosuchservice" (want a port number 0-65535)`},
		{"h:8$0", `bad address "h:8$0": port "8$0" is not a number`},
		{"foo://x:1", `bad address "foo://x:1": unknown scheme "foo" (want tcp, tcp4, tcp6, udp, udp4, udp6, tls, dtls, unix, unixgram, serial, pty, ws, wss)`},
		{"http://example.com/", `bad address "http://example.com/": unknown scheme "http" (want tcp, tcp4, tcp6, udp, udp4, udp6, tls, dtls, unix, unixgram, serial, pty, ws, wss)`},
		{"::1:80", `bad address "::1:80": IPv6 address needs brackets (want [ipv6]:port, e.g. [::1]:5000)`},
		{"fe80::1", `bad address "fe80::1": IPv6 address needs brackets (want [ipv6]:port, e.g. [::1]:5000)`},
		{"tcp:host:80", `bad address "tcp:host:80": missing // after the scheme (want tcp://host:80)`},
		{"[::1:80", `bad address "[::1:80": missing ] after IPv6 address`},
		{"[::1]80", `bad address "[::1]80": unexpected "80" after ] (want [ipv6]:port)`},
		{"[127.0.0.1]:80", `bad address "[127.0.0.1]:80": "127.0.0.1" in brackets is not an IPv6 address`},
		{"[nothost]:80", `bad address "[nothost]:80": "nothost" in brackets is not an IPv6 address`},
		{"tcp4://[::1]:80", `bad address "tcp4://[::1]:80": tcp4 needs an IPv4 address, not ::1`},
		{"udp6://127.0.0.1:80", `bad address "udp6://127.0.0.1:80": udp6 needs an IPv6 address, not 127.0.0.1`},
		{"tcp://", `bad address "tcp://": missing host:port after tcp://`},
		{"tcp://h:80/path", `bad address "tcp://h:80/path": unexpected "/path" (an address has no path)`},
		{"/tmp/x.sock", `bad address "/tmp/x.sock": missing port (for a unix socket write unix:///tmp/x.sock)`},
		{"user@host:22", `bad address "user@host:22": invalid character '@' in host "user@host"`},
		{"a..b:1", `bad address "a..b:1": empty label in host "a..b"`},
		{"host name:1", `bad address "host name:1": invalid character ' ' in host "host name"`},
		{"h:1\n", `bad address "h:1\n": contains a control character at byte 3`},
		{"unix://", `bad address "unix://": missing socket path (e.g. unix:///tmp/wirecat.sock)`},
		{"unixgram:", `bad address "unixgram:": missing socket path (e.g. unixgram:///tmp/wirecat.sock)`},
		{"unix:///" + strings.Repeat("x", 107), `bad address "unix:///` + strings.Repeat("x", 107) + `": socket path is 108 bytes, longer than the 107 a unix socket allows`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in, false)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error %s", tt.in, got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%q) error\n got: %s\nwant: %s", tt.in, err, tt.want)
			}
			if !errors.Is(err, ErrBadAddr) {
				t.Errorf("errors.Is(%v, ErrBadAddr) = false", err)
			}
			var ae *AddrError
			if !errors.As(err, &ae) || ae.Addr != tt.in {
				t.Errorf("AddrError.Addr = %+v, want %q", ae, tt.in)
			}
		})
	}
}

func TestAddrMethods(t *testing.T) {
	tests := []struct {
		in                      string
		network, transport, hp  string
		loopback, multicast, ux bool
	}{
		{"tls://127.0.0.1:8443", "tcp", "tls", "127.0.0.1:8443", true, false, false},
		{"tcp6://[::1]:1", "tcp6", "tcp", "[::1]:1", true, false, false},
		{"udp4://239.0.0.1:9", "udp4", "udp", "239.0.0.1:9", false, true, false},
		{"udp://[ff02::1]:9", "udp", "udp", "[ff02::1]:9", false, true, false},
		{":5000", "tcp", "tcp", ":5000", false, false, false},
		{"0.0.0.0:5000", "tcp", "tcp", "0.0.0.0:5000", false, false, false},
		{"[::]:5000", "tcp", "tcp", "[::]:5000", false, false, false},
		{"localhost:1", "tcp", "tcp", "localhost:1", true, false, false},
		{"LOCALHOST.:1", "tcp", "tcp", "LOCALHOST.:1", true, false, false},
		{"127.8.9.10:1", "tcp", "tcp", "127.8.9.10:1", true, false, false},
		{"[::ffff:127.0.0.1]:1", "tcp", "tcp", "[::ffff:127.0.0.1]:1", true, false, false},
		{"192.168.1.5:1", "tcp", "tcp", "192.168.1.5:1", false, false, false},
		{"example.com:1", "tcp", "tcp", "example.com:1", false, false, false},
		{"unix:///tmp/s", "unix", "unix", "/tmp/s", true, false, true},
		{"unixgram://g", "unixgram", "unixgram", "g", true, false, true},
	}
	for _, tt := range tests {
		a, err := Parse(tt.in, false)
		if err != nil {
			t.Fatal(err)
		}
		if a.Network() != tt.network || a.Transport() != tt.transport || a.HostPort() != tt.hp {
			t.Errorf("%s: Network=%q Transport=%q HostPort=%q, want %q %q %q", tt.in, a.Network(), a.Transport(), a.HostPort(), tt.network, tt.transport, tt.hp)
		}
		if IsLoopback(a) != tt.loopback || a.IsMulticast() != tt.multicast || a.IsUnix() != tt.ux {
			t.Errorf("%s: IsLoopback=%v IsMulticast=%v IsUnix=%v, want %v %v %v", tt.in, IsLoopback(a), a.IsMulticast(), a.IsUnix(), tt.loopback, tt.multicast, tt.ux)
		}
	}
	if (Addr{}).String() != "" {
		t.Errorf("zero Addr String() = %q, want empty", Addr{}.String())
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"127.0.0.1:5000", ":0", "[::1]:80", "tls://h:https", "unix:///tmp/x", "unixgram:a", "udp6://[ff02::1%lo]:5", "foo://x:1", "::1:80", "h:99999"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, udp bool) {
		a, err := Parse(s, udp)
		if err != nil {
			if !errors.Is(err, ErrBadAddr) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrBadAddr", s, err)
			}
			if !strings.HasPrefix(err.Error(), "bad address "+strconv.Quote(s)+": ") {
				t.Fatalf("Parse(%q): error %q does not quote the address", s, err)
			}
			return
		}
		if a.Stream() == a.Packet() {
			t.Fatalf("Parse(%q) = %+v: Stream and Packet both %v", s, a, a.Stream())
		}
		back, err := Parse(a.String(), !udp)
		if err != nil || back != a {
			t.Fatalf("Parse(%q) = %+v; String %q reparses to %+v, %v", s, a, a.String(), back, err)
		}
	})
}
