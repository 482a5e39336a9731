package link

// Serial ports and pseudo-terminals: the addresses.
//
//	serial:/dev/ttyUSB0?baud=9600&parity=even   a port; options as a query
//	serial:///dev/ttyUSB0                        the same port
//	pty:                                         a new pseudo-terminal
//	pty:/tmp/ttyV0                               the same, symlinked at /tmp/ttyV0
//
// Both are streams like TCP. A serial port is opened (exclusively) by Dial
// and by Listen, whose one peer is the port itself; a pty is created by
// both, and its peer is whoever opens the slave side (/dev/pts/N).

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultBaud is the rate a serial port is set to when neither the address
// nor --baud names one: what most boards' consoles and bootloaders use.
const DefaultBaud = 115200

// maxBaud is far above any UART (the fastest USB bridges do 12 Mbaud); a
// bigger number is a typo.
const maxBaud = 100_000_000

// SerialConfig is how a serial port is set up: 8N1 at DefaultBaud with no
// flow control unless the address says otherwise.
type SerialConfig struct {
	Baud   int    // bits per second
	Bits   int    // data bits, 5..8
	Parity string // none, even, odd
	Stop   int    // stop bits, 1 or 2
	Flow   string // none, rtscts, xonxoff
}

// serialKeys are the query keys, in the canonical order.
var serialKeys = []string{"baud", "bits", "parity", "stop", "flow"}

// ParseSerialQuery reads `baud=115200&bits=8&parity=none&stop=1&flow=none`
// (any subset, any order; `parity` also takes n/e/o). It returns the
// settings, with defaults for what is missing, and the query in canonical
// form (only the keys given). A reason is returned for anything unknown.
func ParseSerialQuery(q string) (SerialConfig, string, error) {
	c := SerialConfig{Baud: DefaultBaud, Bits: 8, Parity: "none", Stop: 1, Flow: "none"}
	if q == "" {
		return c, "", nil
	}
	given := map[string]string{}
	for _, kv := range strings.Split(q, "&") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.ToLower(k)
		if !ok || v == "" {
			return c, "", fmt.Errorf("option %q needs a value (e.g. baud=115200)", kv)
		}
		if _, dup := given[k]; dup {
			return c, "", fmt.Errorf("option %q given twice", k)
		}
		v = strings.ToLower(v)
		switch k {
		case "baud":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > maxBaud {
				return c, "", fmt.Errorf("baud %q is not a rate (e.g. 9600, 115200)", v)
			}
			c.Baud, v = n, strconv.Itoa(n)
		case "bits":
			n, err := strconv.Atoi(v)
			if err != nil || n < 5 || n > 8 {
				return c, "", fmt.Errorf("bits %q: want 5, 6, 7 or 8", v)
			}
			c.Bits = n
		case "parity":
			switch v {
			case "n", "none":
				v = "none"
			case "e", "even":
				v = "even"
			case "o", "odd":
				v = "odd"
			default:
				return c, "", fmt.Errorf("parity %q: want none, even or odd (mark and space are not supported)", v)
			}
			c.Parity = v
		case "stop":
			if v != "1" && v != "2" {
				return c, "", fmt.Errorf("stop %q: want 1 or 2", v)
			}
			c.Stop = int(v[0] - '0')
		case "flow":
			switch v {
			case "none", "rtscts", "xonxoff":
			default:
				return c, "", fmt.Errorf("flow %q: want none, rtscts or xonxoff", v)
			}
			c.Flow = v
		default:
			return c, "", fmt.Errorf("unknown option %q (want %s)", k, strings.Join(serialKeys, ", "))
		}
		given[k] = v
	}
	var canon []string
	for _, k := range serialKeys {
		if v, ok := given[k]; ok {
			canon = append(canon, k+"="+v)
		}
	}
	return c, strings.Join(canon, "&"), nil
}

// Serial returns the port's settings, with baud (--baud) used when the
// address names no rate itself; 0 leaves the default.
func (a Addr) Serial(baud int) SerialConfig {
	c, _, _ := ParseSerialQuery(a.Query) // checked by Parse
	if baud > 0 && !strings.Contains(a.Query, "baud=") {
		c.Baud = baud
	}
	return c
}

// parseTTY reads what follows `serial:` or `pty:`.
func parseTTY(s, scheme, rest string) (Addr, error) {
	bad := func(format string, args ...any) (Addr, error) {
		return Addr{}, &AddrError{Addr: s, Reason: fmt.Sprintf(format, args...)}
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	if scheme == "pty" {
		if hasQuery {
			return bad("a pty takes no options (the program opening it sets its own)")
		}
		return Addr{Scheme: scheme, Path: path}, nil
	}
	if path == "" {
		return bad("missing device (e.g. serial:/dev/ttyUSB0; `wirecat ports` lists them)")
	}
	if strings.HasSuffix(path, "/") {
		return bad("%q is a directory, not a device", path)
	}
	_, canon, err := ParseSerialQuery(query)
	if err != nil {
		return bad("%s", err)
	}
	return Addr{Scheme: scheme, Path: path, Query: canon}, nil
}

// ttyString is the canonical form of a serial or pty address.
func ttyString(a Addr) string {
	s := a.Scheme + "://" + a.Path
	if a.Path == "" {
		s = a.Scheme + ":"
	}
	if a.Query != "" {
		s += "?" + a.Query
	}
	return s
}

// ErrDeviceGone is matched by the error a serial port's reads and writes
// return once the device has vanished (a cable pulled, a board reset that
// re-enumerates): the port must be opened again.
var ErrDeviceGone = errors.New("the device went away")

// DeviceError is a serial port whose device vanished mid-session.
type DeviceError struct {
	Addr Addr
	Err  error
}

func (e *DeviceError) Error() string {
	return e.Addr.String() + ": " + ErrDeviceGone.Error() + " (" + Cause(e.Err) + "; cable pulled or board reset?)"
}

func (e *DeviceError) Unwrap() []error { return []error{ErrDeviceGone, e.Err} }

// ttyAddr is a serial port's or a pty's net.Addr: its device path.
type ttyAddr struct{ net, name string }

func (a ttyAddr) Network() string { return a.net }
func (a ttyAddr) String() string  { return a.name }
