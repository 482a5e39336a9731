package json

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

// Decode parses one JSON value (surrounded by optional whitespace). Objects
// become tables with string keys, arrays become tables carrying the
// json.array marker, null becomes json.null (also inside arrays, so indexes
// never shift), numbers become Lua numbers (float64). String bytes outside
// escapes are copied as they are, without UTF-8 validation.
func Decode(L *lua.LState, data []byte) (lua.LValue, error) {
	null, arr := markers(L)
	d := &decoder{L: L, data: data, null: null, array: arr}
	d.space()
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.space()
	if d.pos < len(d.data) {
		return nil, d.errorf("invalid character %s after top-level value", quoteByte(d.data[d.pos]))
	}
	return v, nil
}

type decoder struct {
	L     *lua.LState
	data  []byte
	pos   int
	null  *lua.LUserData
	array *lua.LTable
	str   []byte // scratch for strings with escapes
	// Members of the objects and arrays being read, so each table is
	// created at its final size.
	keys []string
	vals []lua.LValue
}

func (d *decoder) errorf(format string, a ...any) error {
	return &Error{Op: "decode", Msg: fmt.Sprintf(format, a...), Offset: d.pos}
}

// unexpected reports the byte at pos, or the end of the input.
func (d *decoder) unexpected(context string) error {
	if d.pos >= len(d.data) {
		return d.errorf("unexpected end of input")
	}
	return d.errorf("invalid character %s%s", quoteByte(d.data[d.pos]), context)
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		if c == '\'' {
			return `'\''`
		}
		return "'" + string(rune(c)) + "'"
	}
	return fmt.Sprintf("'\\x%02x'", c)
}

func (d *decoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *decoder) value(depth int) (lua.LValue, error) {
	if d.pos >= len(d.data) {
		return nil, d.errorf("unexpected end of input")
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object(depth + 1)
	case c == '[':
		return d.arrayValue(depth + 1)
	case c == '"':
		s, err := d.string()
		return lua.LString(s), err
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case c == 't':
		return lua.LTrue, d.literal("true")
	case c == 'f':
		return lua.LFalse, d.literal("false")
	case c == 'n':
		return d.null, d.literal("null")
	}
	return nil, d.unexpected(" looking for beginning of value")
}

func (d *decoder) literal(word string) error {
	for i := 0; i < len(word); i++ {
		if d.pos >= len(d.data) || d.data[d.pos] != word[i] {
			return d.unexpected(" in literal " + word)
		}
		d.pos++
	}
	return nil
}

func (d *decoder) object(depth int) (lua.LValue, error) {
	if depth > MaxDepth {
		return nil, d.errorf("nesting deeper than %d", MaxDepth)
	}
	d.pos++ // {
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return d.L.CreateTable(0, 0), nil
	}
	base := len(d.vals)
	defer func() { d.keys, d.vals = d.keys[:base], d.vals[:base] }()
	for {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, d.unexpected(" looking for beginning of object key string")
		}
		key, err := d.string()
		if err != nil {
			return nil, err
		}
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, d.unexpected(" after object key")
		}
		d.pos++
		d.space()
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		d.keys = append(d.keys, key)
		d.vals = append(d.vals, v)
		d.space()
		if d.pos < len(d.data) && d.data[d.pos] == ',' {
			d.pos++
			d.space()
			continue
		}
		if d.pos < len(d.data) && d.data[d.pos] == '}' {
			d.pos++
			t := d.L.CreateTable(0, len(d.vals)-base)
			for i, k := range d.keys[base:] {
				t.RawSetString(k, d.vals[base+i])
			}
			return t, nil
		}
		return nil, d.unexpected(" after object key:value pair")
	}
}

func (d *decoder) arrayValue(depth int) (lua.LValue, error) {
	if depth > MaxDepth {
		return nil, d.errorf("nesting deeper than %d", MaxDepth)
	}
	d.pos++ // [
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		t := d.L.CreateTable(0, 0)
		t.Metatable = d.array
		return t, nil
	}
	base := len(d.vals)
	defer func() { d.keys, d.vals = d.keys[:base], d.vals[:base] }()
	for {
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		d.keys = append(d.keys, "")
		d.vals = append(d.vals, v)
		d.space()
		if d.pos < len(d.data) && d.data[d.pos] == ',' {
			d.pos++
			d.space()
			continue
		}
		if d.pos < len(d.data) && d.data[d.pos] == ']' {
			d.pos++
			t := d.L.CreateTable(len(d.vals)-base, 0)
			for i, v := range d.vals[base:] {
				t.RawSetInt(i+1, v)
			}
			t.Metatable = d.array
			return t, nil
		}
		return nil, d.unexpected(" after array element")
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number scans the strict JSON number grammar, then lets strconv convert it.
func (d *decoder) number() (lua.LValue, error) {
	start := d.pos
	digits := func() int {
		n := 0
		for d.pos < len(d.data) && isDigit(d.data[d.pos]) {
			d.pos++
			n++
		}
		return n
	}
	if d.data[d.pos] == '-' {
		d.pos++
	}
	if d.pos < len(d.data) && d.data[d.pos] == '0' {
		d.pos++
	} else if digits() == 0 {
		return nil, d.unexpected(" in numeric literal")
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if digits() == 0 {
			return nil, d.unexpected(" after decimal point in numeric literal")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			return nil, d.unexpected(" in exponent of numeric literal")
		}
	}
	text := string(d.data[start:d.pos])
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		d.pos = start
		return nil, d.errorf("number %s out of range", text)
	}
	return lua.LNumber(f), nil
}

// string reads a quoted string at pos.
func (d *decoder) string() (string, error) {
	d.pos++ // opening quote
	start := d.pos
	// Fast path: no escapes.
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if c == '"' {
			s := string(d.data[start:d.pos])
			d.pos++
			return s, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		d.pos++
	}
	buf := append(d.str[:0], d.data[start:d.pos]...)
	defer func() { d.str = buf[:0] }()
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(buf), nil
		case c < 0x20:
			return "", d.errorf("invalid character %s in string literal", quoteByte(c))
		case c != '\\':
			buf = append(buf, c)
			d.pos++
			continue
		}
		d.pos++ // backslash
		if d.pos >= len(d.data) {
			break
		}
		e := d.data[d.pos]
		d.pos++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := d.hex4()
			if err != nil {
				return "", err
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
					save := d.pos
					d.pos += 2
					if r2, err = d.hex4(); err != nil {
						return "", err
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
					} else {
						d.pos = save // not a pair: the second escape stands alone
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			d.pos--
			return "", d.errorf("invalid escape %s in string literal", quoteByte(e))
		}
	}
	return "", d.errorf("unexpected end of input in string literal")
}

func (d *decoder) hex4() (rune, error) {
	var r rune
	for i := 0; i < 4; i++ {
		if d.pos >= len(d.data) {
			return 0, d.errorf("unexpected end of input in \\u escape")
		}
		c := d.data[d.pos]
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, d.errorf("invalid character %s in \\u escape", quoteByte(c))
		}
		r = r<<4 | rune(v)
		d.pos++
	}
	return r, nil
}
