// Package scan finds which TCP ports of a host accept connections (nc -z):
// it parses port lists and ranges, and tries them with a bounded number of
// connections in flight, reporting open ports in the order they were asked.
package scan

import (
	"fmt"
	"strconv"
	"strings"
)

// Ports is the ports to try, in the order given, each once.
type Ports []uint16

// ParsePorts reads `22`, `1-1024`, `22,80,8000-8100` (service names like
// `http` are not read: a list of numbers is unambiguous). A port given twice
// is tried once, where it first appears.
func ParsePorts(spec string) (Ports, error) {
	bad := func(format string, args ...any) (Ports, error) {
		return nil, fmt.Errorf("bad port list %q: %s", spec, fmt.Sprintf(format, args...))
	}
	if spec == "" {
		return bad("empty (want e.g. 22, 1-1024 or 22,80,8000-8100)")
	}
	var seen [65536 / 64]uint64
	var ps Ports
	for _, item := range strings.Split(spec, ",") {
		if item == "" {
			return bad("empty item (want e.g. 22,80)")
		}
		lo, hi, isRange := strings.Cut(item, "-")
		from, err := port(lo)
		if err != nil {
			return bad("%v", err)
		}
		to := from
		if isRange {
			if to, err = port(hi); err != nil {
				return bad("%v", err)
			}
			if to < from {
				return bad("range %s ends before it starts (want low-high, e.g. %d-%d)", item, to, from)
			}
		}
		for p := from; p <= to; p++ {
			if seen[p/64]&(1<<(p%64)) == 0 {
				seen[p/64] |= 1 << (p % 64)
				ps = append(ps, uint16(p))
			}
		}
	}
	return ps, nil
}

func port(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d out of range 1-65535", n)
	}
	return n, nil
}
