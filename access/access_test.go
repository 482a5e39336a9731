package access

import (
	"net"
	"testing"
)

func TestPermit(t *testing.T) {
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	cases := []struct {
		allow, deny []string
		addr        string
		want        bool
	}{
		{nil, nil, "10.1.2.3:5", true},
		{[]string{"127.0.0.0/8"}, nil, "127.0.0.2:5", true},
		{[]string{"127.0.0.0/8"}, nil, "10.0.0.1:5", false},
		{nil, []string{"127.0.0.1"}, "127.0.0.1:5", false},
		{nil, []string{"127.0.0.1"}, "127.0.0.2:5", true},
		{[]string{"127.0.0.0/8"}, []string{"127.0.0.5"}, "127.0.0.5:1", false},
		{[]string{"::1"}, nil, "[::1]:80", true},
		{[]string{"127.0.0.1,::1"}, nil, "[::1]:80", true},
		{[]string{"127.0.0.1/32"}, nil, "[::ffff:127.0.0.1]:80", true},
		{nil, []string{"fe80::/10"}, "[fe80::1%lo]:80", false},
		{[]string{"fe80::/10"}, nil, "[fe80::1%lo]:80", true},
	}
	for _, c := range cases {
		l, err := Parse(c.allow, c.deny)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Permit(tcp(c.addr)); got != c.want {
			t.Errorf("allow %v deny %v: Permit(%s) = %v, want %v", c.allow, c.deny, c.addr, got, c.want)
		}
	}
	udp, _ := net.ResolveUDPAddr("udp", "10.0.0.1:5")
	if l, _ := Parse(nil, []string{"10.0.0.0/8"}); l.Permit(udp) {
		t.Error("a denied UDP sender was permitted")
	}
	u, _ := net.ResolveUnixAddr("unix", "/tmp/x.sock")
	l, _ := Parse([]string{"127.0.0.1"}, nil)
	if !l.Permit(u) {
		t.Error("unix peers must be permitted")
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{"localhost", "10.0.0.0/33", "1.2.3"} {
		if _, err := Parse([]string{bad}, nil); err == nil {
			t.Errorf("Parse(%q): want error", bad)
		}
	}
}
