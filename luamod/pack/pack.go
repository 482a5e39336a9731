// Package pack gives gopher-lua Lua 5.3's string.pack, string.unpack and
// string.packsize.
//
// Numbers in gopher-lua are float64, so integers are exact only up to 2^53.
// Signed 8-byte options (j, l, i8) accept and return [-2^63, 2^63); unsigned
// 8-byte options (J, L, T, I8) accept [-2^63, 2^64) (negative values are
// packed as two's complement, as Lua 5.3 does) and unpack as non-negative
// numbers. Larger integers (i9..i16) are sign-extended from 64 bits,
// unsigned ones (I9..I16) zero-extended.
package pack

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// nativeLittle is the byte order '=' selects and formats start with.
var nativeLittle = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Open installs pack, unpack and packsize into the global string table.
func Open(L *lua.LState) {
	st, ok := L.GetGlobal("string").(*lua.LTable)
	if !ok {
		st = L.NewTable()
		L.SetGlobal("string", st)
	}
	register(L, st)
}

// Loader is a lua.LGFunction for L.PreloadModule: require returns a table
// with pack, unpack and packsize.
func Loader(L *lua.LState) int {
	t := L.NewTable()
	register(L, t)
	L.Push(t)
	return 1
}

func register(L *lua.LState, t *lua.LTable) {
	t.RawSetString("pack", L.NewFunction(pooledPack))
	t.RawSetString("unpack", L.NewFunction(unpack))
	t.RawSetString("packsize", L.NewFunction(packsize))
}

// packer keeps a scratch buffer so pack allocates only its result string.
type packer struct {
	buf []byte
}

// packers lends a scratch buffer to each call, so one pack function may be
// shared by Lua states on many goroutines (a fleet's devices share their
// libraries) without a buffer per state.
var packers = sync.Pool{New: func() any { return new(packer) }}

func pooledPack(L *lua.LState) int {
	p := packers.Get().(*packer)
	defer packers.Put(p) // also when pack raises a Lua error
	return p.pack(L)
}

func (p *packer) pack(L *lua.LState) int {
	const fname = "pack"
	f := checkString(L, 1, fname)
	h := header{little: nativeLittle, maxAlign: 1}
	buf := p.buf[:0]
	arg := 1
	total := 0
	for i := 0; i < len(f); {
		k, size, pad, next, err := details(f, i, &h, total)
		if err != nil {
			fail(L, fname, err)
		}
		i = next
		total += pad + size
		if total > maxResult {
			argError(L, 1, fname, "format result too large")
		}
		for ; pad > 0; pad-- {
			buf = append(buf, 0)
		}
		switch k {
		case kInt, kUint:
			arg++
			v := checkInteger(L, arg, fname)
			buf = appendInt(L, buf, v, k == kInt, size, h.little, arg)
		case kFloat:
			arg++
			v := checkNumber(L, arg, fname)
			buf = appendUint(buf, uint64(math.Float32bits(float32(v))), h.little, 4, false)
		case kDouble:
			arg++
			v := checkNumber(L, arg, fname)
			buf = appendUint(buf, math.Float64bits(v), h.little, 8, false)
		case kChar:
			arg++
			s := checkString(L, arg, fname)
			if len(s) > size {
				argError(L, arg, fname, "string longer than given size")
			}
			buf = append(buf, s...)
			for j := len(s); j < size; j++ {
				buf = append(buf, 0)
			}
		case kString:
			arg++
			s := checkString(L, arg, fname)
			if size < 8 && uint64(len(s)) >= 1<<(uint(size)*8) {
				argError(L, arg, fname, "string length does not fit in given size")
			}
			total += len(s)
			if total > maxResult {
				argError(L, 1, fname, "format result too large")
			}
			buf = appendUint(buf, uint64(len(s)), h.little, size, false)
			buf = append(buf, s...)
		case kZstr:
			arg++
			s := checkString(L, arg, fname)
			if strings.IndexByte(s, 0) >= 0 {
				argError(L, arg, fname, "string contains zeros")
			}
			total += len(s) + 1
			if total > maxResult {
				argError(L, 1, fname, "format result too large")
			}
			buf = append(buf, s...)
			buf = append(buf, 0)
		case kPadding:
			buf = append(buf, 0)
		}
	}
	L.Push(lua.LString(buf))
	// Keep the grown buffer for the next call, but do not pin huge ones.
	if cap(buf) <= 64<<10 {
		p.buf = buf
	}
	return 1
}

// appendInt range-checks v for an integer option and appends it.
func appendInt(L *lua.LState, buf []byte, v float64, signed bool, size int, little bool, arg int) []byte {
	const two63 = 1 << 63
	// Like Lua 5.3, a value no int64 can hold is not an integer at all; the
	// exception is the upper half of the unsigned 8-byte range.
	if v < -two63 || v >= 2*two63 || (v >= two63 && (signed || size < 8)) {
		argError(L, arg, "pack", "number has no integer representation")
	}
	if signed {
		if size < 8 {
			lim := float64(uint64(1) << (uint(size)*8 - 1))
			if v < -lim || v >= lim {
				argError(L, arg, "pack", "integer overflow")
			}
		}
		n := int64(v)
		return appendUint(buf, uint64(n), little, size, n < 0)
	}
	if size < 8 {
		if v < 0 || v >= float64(uint64(1)<<(uint(size)*8)) {
			argError(L, arg, "pack", "unsigned overflow")
		}
		return appendUint(buf, uint64(v), little, size, false)
	}
	// A negative value is its 64-bit two's complement, zero-extended as Lua 5.3 does.
	if v < 0 {
		return appendUint(buf, uint64(int64(v)), little, size, false)
	}
	return appendUint(buf, uint64(v), little, size, false)
}

// appendUint appends the low size bytes of u; bytes past the eighth are 0xff
// when neg (sign extension) and 0 otherwise.
func appendUint(buf []byte, u uint64, little bool, size int, neg bool) []byte {
	ext := byte(0)
	if neg {
		ext = 0xff
	}
	if little {
		for i := 0; i < size; i++ {
			if i < 8 {
				buf = append(buf, byte(u>>(8*uint(i))))
			} else {
				buf = append(buf, ext)
			}
		}
		return buf
	}
	for i := size - 1; i >= 0; i-- {
		if i < 8 {
			buf = append(buf, byte(u>>(8*uint(i))))
		} else {
			buf = append(buf, ext)
		}
	}
	return buf
}

// readUint reads a size-byte integer; ok is false when it does not fit in 64
// bits (after sign extension for signed values).
func readUint(b string, little bool, size int, signed bool) (u uint64, ok bool) {
	limit := min(size, 8)
	for i := 0; i < limit; i++ {
		var c byte
		if little {
			c = b[i]
		} else {
			c = b[size-1-i]
		}
		u |= uint64(c) << (8 * uint(i))
	}
	if size < 8 {
		if signed {
			shift := 64 - 8*uint(size)
			u = uint64(int64(u<<shift) >> shift)
		}
		return u, true
	}
	mask := byte(0)
	if signed && int64(u) < 0 {
		mask = 0xff
	}
	for i := 8; i < size; i++ {
		var c byte
		if little {
			c = b[i]
		} else {
			c = b[size-1-i]
		}
		if c != mask {
			return u, false
		}
	}
	return u, true
}

func unpack(L *lua.LState) int {
	const fname = "unpack"
	f := checkString(L, 1, fname)
	data := checkString(L, 2, fname)
	ld := len(data)
	init := 1.0
	if L.GetTop() >= 3 && L.Get(3) != lua.LNil {
		init = checkInteger(L, 3, fname)
	}
	pos := posRelative(init, ld) - 1
	if pos < 0 || pos > ld {
		argError(L, 3, fname, "initial position out of string")
	}
	h := header{little: nativeLittle, maxAlign: 1}
	n := 0
	for i := 0; i < len(f); {
		k, size, pad, next, err := details(f, i, &h, pos)
		if err != nil {
			fail(L, fname, err)
		}
		i = next
		if pad+size > ld-pos {
			argError(L, 2, fname, "data string too short")
		}
		pos += pad
		switch k {
		case kInt, kUint:
			u, ok := readUint(data[pos:], h.little, size, k == kInt)
			if !ok {
				L.RaiseError("%d-byte integer does not fit into Lua Integer", size)
			}
			if k == kInt {
				L.Push(lua.LNumber(float64(int64(u))))
			} else {
				L.Push(lua.LNumber(float64(u)))
			}
			n++
		case kFloat:
			u, _ := readUint(data[pos:], h.little, 4, false)
			L.Push(lua.LNumber(math.Float32frombits(uint32(u))))
			n++
		case kDouble:
			u, _ := readUint(data[pos:], h.little, 8, false)
			L.Push(lua.LNumber(math.Float64frombits(u)))
			n++
		case kChar:
			L.Push(lua.LString(data[pos : pos+size]))
			n++
		case kString:
			u, ok := readUint(data[pos:], h.little, size, false)
			if !ok {
				L.RaiseError("%d-byte integer does not fit into Lua Integer", size)
			}
			if u > uint64(ld-pos-size) {
				argError(L, 2, fname, "data string too short")
			}
			start := pos + size
			L.Push(lua.LString(data[start : start+int(u)]))
			pos += int(u)
			n++
		case kZstr:
			end := strings.IndexByte(data[pos:], 0)
			if end < 0 {
				argError(L, 2, fname, "unfinished string for format 'z'")
			}
			L.Push(lua.LString(data[pos : pos+end]))
			pos += end + 1
			n++
		}
		pos += size
	}
	L.Push(lua.LNumber(pos + 1))
	return n + 1
}

// posRelative turns a Lua string position (negative counts from the end)
// into a 1-based one; 0 means before the start.
func posRelative(p float64, n int) int {
	switch {
	case p >= 0:
		if p > float64(n)+1 {
			return n + 2 // out of string; the caller reports it
		}
		return int(p)
	case -p > float64(n):
		return 0
	default:
		return n + int(p) + 1
	}
}

func packsize(L *lua.LState) int {
	const fname = "packsize"
	f := checkString(L, 1, fname)
	h := header{little: nativeLittle, maxAlign: 1}
	total := 0
	for i := 0; i < len(f); {
		k, size, pad, next, err := details(f, i, &h, total)
		if err != nil {
			fail(L, fname, err)
		}
		i = next
		if k == kString || k == kZstr {
			argError(L, 1, fname, "variable-length format")
		}
		size += pad
		if total > maxResult-size {
			argError(L, 1, fname, "format result too large")
		}
		total += size
	}
	L.Push(lua.LNumber(total))
	return 1
}

// fail raises a format error the way Lua 5.3 does.
func fail(L *lua.LState, fname string, err *formatError) {
	if err.arg {
		argError(L, 1, fname, err.msg)
	}
	L.RaiseError("%s", err.msg)
}

// argError raises Lua 5.3's "bad argument" error. gopher-lua's own ArgError
// names the function by its call site, which is unstable and unquoted.
func argError(L *lua.LState, n int, fname, msg string) {
	L.RaiseError("bad argument #%d to '%s' (%s)", n, fname, msg)
}

func typeError(L *lua.LState, n int, fname, want string) {
	got := "no value"
	if n <= L.GetTop() {
		got = L.Get(n).Type().String()
	}
	argError(L, n, fname, want+" expected, got "+got)
}

func checkString(L *lua.LState, n int, fname string) string {
	switch v := L.Get(n).(type) {
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return v.String()
	}
	typeError(L, n, fname, "string")
	return ""
}

func checkNumber(L *lua.LState, n int, fname string) float64 {
	switch v := L.Get(n).(type) {
	case lua.LNumber:
		return float64(v)
	case lua.LString:
		if f, ok := parseNumber(string(v)); ok {
			return f
		}
	}
	typeError(L, n, fname, "number")
	return 0
}

func checkInteger(L *lua.LState, n int, fname string) float64 {
	v := checkNumber(L, n, fname)
	if math.IsInf(v, 0) || v != math.Trunc(v) { // v != v for NaN
		argError(L, n, fname, "number has no integer representation")
	}
	return v
}

// parseNumber converts a string the way gopher-lua's arithmetic does.
func parseNumber(s string) (float64, bool) {
	s = strings.Trim(s, " \t\n")
	if i, err := strconv.ParseInt(s, 0, 64); err == nil {
		return float64(i), true
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}
