package proto

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadSpec is wrapped by every error Parse returns for a spec it cannot
// read, so the CLI can report a usage error.
var ErrBadSpec = errors.New("bad framing")

// ValidForms lists every framing spec form, for help text and errors.
const ValidForms = "raw, line, crlf, delim:SEP, len:u8|u16be|u16le|u32be|u32le|varint, fixed:N, slip, cobs, modbus-tcp, modbus-rtu, lua:FILE"

// Raw is the framing that passes bytes through untouched.
var Raw Framer = rawFramer{}

// simpleFramers are the framings that take no argument.
var simpleFramers = map[string]Framer{"raw": Raw, "line": lineFramer{}, "crlf": crlfFramer{}, "slip": slipFramer{}, "cobs": cobsFramer{},
	"modbus-tcp": ModbusTCP, "modbus-rtu": ModbusRTU}

// LoadFunc makes a framer that proto does not build itself; Parse hands it
// the kind and argument of a "lua:FILE" spec.
type LoadFunc func(kind, arg string) (Framer, error)

// Parse reads a --frame spec: raw, line, crlf, delim:SEP, len:KIND, fixed:N,
// slip, cobs or lua:FILE. SEP takes the escapes of Unescape. lua:FILE is
// handed to load.
func Parse(spec string, load LoadFunc) (Framer, error) {
	kind, arg, hasArg := strings.Cut(spec, ":")
	kind = strings.ToLower(strings.TrimSpace(kind))
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s; valid forms: %s", ErrBadSpec, spec, fmt.Sprintf(format, args...), ValidForms)
	}
	if f, ok := simpleFramers[kind]; ok {
		if hasArg {
			return nil, bad("%s takes no argument", kind)
		}
		return f, nil
	}
	switch kind {
	case "":
		return nil, bad("empty framing spec")
	case "delim":
		if arg == "" {
			return nil, bad("delim:SEP needs a separator")
		}
		sep, err := Unescape(arg)
		if err != nil {
			return nil, bad("separator: %v", err)
		}
		return delimFramer{sep}, nil
	case "len":
		if arg == "" {
			return nil, bad("len needs a prefix type (%s)", strings.Join(lenKinds, ", "))
		}
		f, ok := newLenFramer(strings.ToLower(arg))
		if !ok {
			return nil, bad("unknown length prefix %q", arg)
		}
		return f, nil
	case "fixed":
		n, err := strconv.Atoi(arg)
		if err != nil || n <= 0 {
			return nil, bad("fixed:N needs a positive size in bytes, got %q", arg)
		}
		return fixedFramer{n}, nil
	case "lua":
		if arg == "" {
			return nil, bad("lua:FILE needs a script file")
		}
		if load == nil {
			return nil, bad("lua framing is not available")
		}
		f, err := load(kind, arg)
		if err != nil {
			return nil, fmt.Errorf("framing %q: %w", spec, err)
		}
		return f, nil
	}
	return nil, bad("unknown framing %q", kind)
}

// Name returns the spec of f ("line", "len:u16be"), for session headers and
// logs. Framers that do not say (a Lua framer without a String method) are
// "custom".
func Name(f Framer) string {
	if f == nil {
		return "raw"
	}
	if s, ok := f.(fmt.Stringer); ok {
		return s.String()
	}
	return "custom"
}

// IsRaw reports whether f passes bytes through untouched (a nil Framer too),
// so callers can take the fast path that moves bytes without framing.
func IsRaw(f Framer) bool {
	_, ok := f.(rawFramer)
	return f == nil || ok
}

// Encode appends msg framed by f to dst; a nil f is raw.
func Encode(f Framer, dst, msg []byte) ([]byte, error) {
	if f == nil {
		return append(dst, msg...), nil
	}
	return f.Encode(dst, msg)
}
