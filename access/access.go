// Package access decides which peers may connect: --allow and --deny.
package access

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// List holds allowed and denied networks. The zero List permits everyone.
type List struct {
	allow, deny []netip.Prefix
}

// Parse reads CIDRs (10.0.0.0/8, ::1/128) or bare addresses (127.0.0.1).
func Parse(allow, deny []string) (*List, error) {
	l := &List{}
	var err error
	if l.allow, err = prefixes("--allow", allow); err != nil {
		return nil, err
	}
	if l.deny, err = prefixes("--deny", deny); err != nil {
		return nil, err
	}
	return l, nil
}

func prefixes(flag string, in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range in {
		for _, part := range strings.Split(s, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if p, err := netip.ParsePrefix(part); err == nil {
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("%s %q: not an address or CIDR (want 192.168.1.0/24, ::1 or 127.0.0.1)", flag, part)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return out, nil
}

// Permit reports whether a peer at addr may connect: not denied, and
// allowed when an allow list is given. Peers without an IP address (Unix
// sockets) are always permitted.
func (l *List) Permit(addr net.Addr) bool {
	if l == nil || len(l.allow)+len(l.deny) == 0 {
		return true
	}
	ip, ok := ipOf(addr)
	if !ok {
		return true
	}
	for _, p := range l.deny {
		if p.Contains(ip) {
			return false
		}
	}
	if len(l.allow) == 0 {
		return true
	}
	for _, p := range l.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ipOf is the peer's IP without its zone (a prefix never contains a zoned
// address, so fe80::1%eth0 would slip past --deny fe80::/10). It reads the
// address types directly: a datagram listener asks once per datagram.
func ipOf(addr net.Addr) (netip.Addr, bool) {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		var err error
		if ap, err = netip.ParseAddrPort(addr.String()); err != nil {
			return netip.Addr{}, false
		}
	}
	return ap.Addr().Unmap().WithZone(""), ap.Addr().IsValid()
}
