package json

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

// Encode renders v as compact JSON. Tables whose keys are exactly 1..n
// (n > 0), or that carry the json.array marker, become arrays; other tables
// become objects with sorted keys (numeric keys written as numbers in
// quotes); an empty unmarked table is {}. Bytes that are not UTF-8 are
// written as \u00XX.
func Encode(L *lua.LState, v lua.LValue) ([]byte, error) {
	null, arr := markers(L)
	e := &encoder{null: null, array: arr}
	if err := e.value(v); err != nil {
		return nil, err
	}
	return e.buf, nil
}

type encoder struct {
	buf   []byte
	null  *lua.LUserData
	array *lua.LTable
	stack []*lua.LTable // tables being encoded, to catch cycles
}

func encErr(format string, a ...any) error {
	return &Error{Op: "encode", Msg: fmt.Sprintf(format, a...), Offset: -1}
}

func (e *encoder) value(v lua.LValue) error {
	switch v := v.(type) {
	case *lua.LNilType:
		e.buf = append(e.buf, "null"...)
	case lua.LBool:
		e.buf = strconv.AppendBool(e.buf, bool(v))
	case lua.LNumber:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			name := "nan"
			if math.IsInf(f, 1) {
				name = "inf"
			} else if math.IsInf(f, -1) {
				name = "-inf"
			}
			return encErr("cannot encode number %s", name)
		}
		e.buf = appendNumber(e.buf, f)
	case lua.LString:
		e.buf = appendString(e.buf, string(v))
	case *lua.LUserData:
		if v != e.null {
			return encErr("cannot encode userdata")
		}
		e.buf = append(e.buf, "null"...)
	case *lua.LTable:
		return e.table(v)
	default:
		return encErr("cannot encode %s", v.Type())
	}
	return nil
}

func (e *encoder) table(t *lua.LTable) error {
	if slices.Contains(e.stack, t) {
		return encErr("cycle detected")
	}
	if len(e.stack) >= MaxDepth {
		return encErr("nesting deeper than %d", MaxDepth)
	}
	e.stack = append(e.stack, t)
	defer func() { e.stack = e.stack[:len(e.stack)-1] }()

	count, maxIndex, other := 0, 0, lua.LValue(nil)
	t.ForEach(func(k, _ lua.LValue) {
		count++
		if n, ok := k.(lua.LNumber); ok && n >= 1 && n == lua.LNumber(math.Trunc(float64(n))) && n <= 1<<53 {
			maxIndex = max(maxIndex, int(n))
		} else if other == nil {
			other = k
		}
	})
	marked := t.Metatable == e.array
	if marked && other != nil {
		return encErr("array has non-index key %s", describe(other))
	}
	if marked || (count > 0 && other == nil && maxIndex == count) {
		if marked && maxIndex > 2*count+1024 {
			return encErr("array too sparse (%d values, largest index %d)", count, maxIndex)
		}
		e.buf = append(e.buf, '[')
		for i := 1; i <= maxIndex; i++ {
			if i > 1 {
				e.buf = append(e.buf, ',')
			}
			if err := e.value(t.RawGetInt(i)); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
		return nil
	}

	type member struct {
		key string
		val lua.LValue
	}
	members := make([]member, 0, count)
	var bad error
	t.ForEach(func(k, v lua.LValue) {
		switch k := k.(type) {
		case lua.LString:
			members = append(members, member{string(k), v})
		case lua.LNumber:
			f := float64(k)
			if math.IsInf(f, 0) {
				bad = encErr("cannot encode table key %v", k)
				return
			}
			members = append(members, member{string(appendNumber(nil, f)), v})
		default:
			if bad == nil {
				bad = encErr("cannot encode table key of type %s", k.Type())
			}
		}
	})
	if bad != nil {
		return bad
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	e.buf = append(e.buf, '{')
	for i, m := range members {
		if i > 0 {
			if m.key == members[i-1].key {
				return encErr("duplicate key %q (a number key and a string key)", m.key)
			}
			e.buf = append(e.buf, ',')
		}
		e.buf = appendString(e.buf, m.key)
		e.buf = append(e.buf, ':')
		if err := e.value(m.val); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

func describe(v lua.LValue) string {
	if s, ok := v.(lua.LString); ok {
		return strconv.Quote(string(s))
	}
	return v.String()
}

// appendNumber writes the shortest text that reads back as f, like
// JavaScript: plain digits for 1e-6 <= |f| < 1e21 (so integers have no
// fraction or exponent), an exponent otherwise.
func appendNumber(b []byte, f float64) []byte {
	abs := math.Abs(f)
	if abs == 0 || (abs >= 1e-6 && abs < 1e21) {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	b = strconv.AppendFloat(b, f, 'e', -1, 64)
	// Drop the exponent's leading zero: 1e-07 becomes 1e-7.
	if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1]
		b = b[:n-1]
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as a JSON string. Valid UTF-8 is kept as is; each
// byte of an invalid sequence becomes \u00XX.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
