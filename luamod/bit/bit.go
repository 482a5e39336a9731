// Package bit gives gopher-lua the LuaBitOp "bit" module (as in LuaJIT):
// operations on 32-bit integers whose results are signed 32-bit numbers.
//
// Arguments are numbers (or numeric strings); they are rounded to the
// nearest integer (ties to even) and reduced modulo 2^32, so 0xffffffff and
// -1 are the same value. NaN and infinities count as 0.
package bit

import (
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

var funcs = map[string]lua.LGFunction{
	"tobit":   tobit,
	"bnot":    bnot,
	"band":    band,
	"bor":     bor,
	"bxor":    bxor,
	"lshift":  lshift,
	"rshift":  rshift,
	"arshift": arshift,
	"rol":     rol,
	"ror":     ror,
	"bswap":   bswap,
	"tohex":   tohex,
}

// Open sets the global table bit.
func Open(L *lua.LState) {
	L.SetGlobal("bit", newModule(L))
}

// Loader is a lua.LGFunction for L.PreloadModule("bit", bit.Loader).
func Loader(L *lua.LState) int {
	L.Push(newModule(L))
	return 1
}

func newModule(L *lua.LState) *lua.LTable {
	t := L.CreateTable(0, len(funcs))
	for name, fn := range funcs {
		t.RawSetString(name, L.NewFunction(fn))
	}
	return t
}

// ToBit reduces x to a signed 32-bit integer the way bit.tobit does.
func ToBit(x float64) int32 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	x = math.RoundToEven(x)
	if math.Abs(x) < 1<<63 {
		return int32(uint32(int64(x)))
	}
	// Beyond int64 every float is an integer and math.Mod is exact.
	return int32(uint32(int64(math.Mod(x, 1<<32))))
}

// arg reads argument n as 32 bits, raising LuaBitOp's type error otherwise.
func arg(L *lua.LState, n int, fname string) uint32 {
	switch v := L.Get(n).(type) {
	case lua.LNumber:
		return uint32(ToBit(float64(v)))
	case lua.LString:
		if f, ok := parseNumber(string(v)); ok {
			return uint32(ToBit(f))
		}
	}
	got := "no value"
	if n <= L.GetTop() {
		got = L.Get(n).Type().String()
	}
	L.RaiseError("bad argument #%d to '%s' (number expected, got %s)", n, fname, got)
	return 0
}

func push(L *lua.LState, b uint32) int {
	L.Push(lua.LNumber(int32(b)))
	return 1
}

func tobit(L *lua.LState) int { return push(L, arg(L, 1, "tobit")) }
func bnot(L *lua.LState) int  { return push(L, ^arg(L, 1, "bnot")) }
func bswap(L *lua.LState) int {
	b := arg(L, 1, "bswap")
	return push(L, b>>24|b>>8&0xff00|b<<8&0xff0000|b<<24)
}

func band(L *lua.LState) int {
	b := arg(L, 1, "band")
	for i := L.GetTop(); i > 1; i-- {
		b &= arg(L, i, "band")
	}
	return push(L, b)
}

func bor(L *lua.LState) int {
	b := arg(L, 1, "bor")
	for i := L.GetTop(); i > 1; i-- {
		b |= arg(L, i, "bor")
	}
	return push(L, b)
}

func bxor(L *lua.LState) int {
	b := arg(L, 1, "bxor")
	for i := L.GetTop(); i > 1; i-- {
		b ^= arg(L, i, "bxor")
	}
	return push(L, b)
}

func lshift(L *lua.LState) int {
	b, n := arg(L, 1, "lshift"), arg(L, 2, "lshift")&31
	return push(L, b<<n)
}
func rshift(L *lua.LState) int {
	b, n := arg(L, 1, "rshift"), arg(L, 2, "rshift")&31
	return push(L, b>>n)
}
func arshift(L *lua.LState) int {
	b, n := arg(L, 1, "arshift"), arg(L, 2, "arshift")&31
	return push(L, uint32(int32(b)>>n))
}
func rol(L *lua.LState) int {
	b, n := arg(L, 1, "rol"), arg(L, 2, "rol")&31
	return push(L, b<<n|b>>(32-n))
}
func ror(L *lua.LState) int {
	b, n := arg(L, 1, "ror"), arg(L, 2, "ror")&31
	return push(L, b>>n|b<<(32-n))
}

// tohex(x[, n]) formats the low n hex digits of x (default 8, at most 8);
// a negative n asks for upper case.
func tohex(L *lua.LState) int {
	b := arg(L, 1, "tohex")
	n := int64(8)
	if L.GetTop() >= 2 {
		n = int64(int32(arg(L, 2, "tohex")))
	}
	digits := "0123456789abcdef"
	if n < 0 {
		n = -n
		digits = "0123456789ABCDEF"
	}
	n = min(n, 8)
	var buf [8]byte
	for i := n - 1; i >= 0; i-- {
		buf[i] = digits[b&15]
		b >>= 4
	}
	L.Push(lua.LString(buf[:n]))
	return 1
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
