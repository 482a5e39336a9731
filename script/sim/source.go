package sim

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/wirecat-dev/wirecat/link"
)

// MaxSources bounds the addresses -s/--source may list or span. One source
// address gives a target about 28,000 ephemeral ports; 4096 of them are
// over 100 million connections, more than any machine's descriptors hold,
// so a longer range is a typo (a /16 spelled as a range), not a plan.
const MaxSources = 4096

// ParseSources reads simulate's -s/--source: one ADDR[:PORT] as every
// other command takes it (link.ParseSource), or a comma-separated list of
// them, where an item may also be an address range FIRST-LAST (IPv4 or
// IPv6, both ends included, e.g. 127.0.0.2-127.0.0.9 or fd00::10-fd00::1f).
// Device id i connects from item (i-1) modulo the list's length.
func ParseSources(s string) ([]string, error) {
	var out []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if first, last, ok := strings.Cut(item, "-"); ok {
			a, errA := netip.ParseAddr(first)
			b, errB := netip.ParseAddr(last)
			if errA == nil && errB == nil {
				var err error
				if out, err = appendRange(out, item, a, b); err != nil {
					return nil, err
				}
				continue
			}
			// Not two addresses: a host name with a dash, which
			// ParseSource takes or explains.
		}
		if _, _, err := link.ParseSource(item); err != nil {
			return nil, err
		}
		if len(out) >= MaxSources {
			return nil, tooMany(s)
		}
		out = append(out, item)
	}
	return out, nil
}

// appendRange appends the addresses a to b to out, or says why it cannot.
func appendRange(out []string, item string, a, b netip.Addr) ([]string, error) {
	bad := func(reason string) ([]string, error) {
		return nil, &link.AddrError{Addr: item, Reason: reason}
	}
	a, b = a.Unmap(), b.Unmap()
	switch {
	case a.Is4() != b.Is4():
		return bad("a range goes from an IPv4 address to an IPv4 address, or IPv6 to IPv6")
	case a.Zone() != b.Zone():
		return bad("both ends of a range need the same zone")
	case b.Less(a):
		return bad("the range ends before it starts (want FIRST-LAST, e.g. 127.0.0.2-127.0.0.9)")
	}
	for ip := a; ; ip = ip.Next() {
		if len(out) >= MaxSources {
			return bad(fmt.Sprintf("more than %d source addresses", MaxSources))
		}
		out = append(out, ip.String())
		if ip == b {
			return out, nil
		}
	}
}

func tooMany(s string) error {
	return &link.AddrError{Addr: s, Reason: fmt.Sprintf("more than %d source addresses", MaxSources)}
}
