package pack_test

import (
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/internal/luatest"
	"github.com/wirecat-dev/wirecat/luamod/pack"
)

func newState(t testing.TB) *lua.LState {
	L := lua.NewState()
	pack.Open(L)
	t.Cleanup(L.Close)
	return L
}

func TestLua(t *testing.T) {
	luatest.Run(t, newState(t), "testdata/pack_test.lua")
}

// eval runs a Lua expression and returns its first value as a string, or the error.
func eval(L *lua.LState, expr string) (string, error) {
	if err := L.DoString("__r = " + expr); err != nil {
		return "", err
	}
	v := L.GetGlobal("__r")
	if s, ok := v.(lua.LString); ok {
		return string(s), nil
	}
	return v.String(), nil
}

func TestPackBytes(t *testing.T) {
	L := newState(t)
	tests := []struct {
		expr string
		want string
	}{
		{`string.pack(">I2", 0x1234)`, "\x12\x34"},
		{`string.pack("<I2", 0x1234)`, "\x34\x12"},
		{`string.pack(">i2", -2)`, "\xff\xfe"},
		{`string.pack("<i3", -1)`, "\xff\xff\xff"},
		{`string.pack(">I4", 0xdeadbeef)`, "\xde\xad\xbe\xef"},
		{`string.pack("<j", 1)`, "\x01\x00\x00\x00\x00\x00\x00\x00"},
		{`string.pack(">J", 2^63)`, "\x80\x00\x00\x00\x00\x00\x00\x00"},
		{`string.pack(">i9", -2)`, "\xff\xff\xff\xff\xff\xff\xff\xff\xfe"},
		{`string.pack(">f", 1.5)`, "\x3f\xc0\x00\x00"},
		{`string.pack(">d", -2)`, "\xc0\x00\x00\x00\x00\x00\x00\x00"},
		{`string.pack(">s1", "ab")`, "\x02ab"},
		{`string.pack("<s2", "ab")`, "\x02\x00ab"},
		{`string.pack(">s4", "")`, "\x00\x00\x00\x00"},
		{`string.pack("z", "hi")`, "hi\x00"},
		{`string.pack("c4", "hi")`, "hi\x00\x00"},
		{`string.pack("!4 >b I4", 1, 2)`, "\x01\x00\x00\x00\x00\x00\x00\x02"},
		{`string.pack("!2 >b I4", 1, 2)`, "\x01\x00\x00\x00\x00\x02"},
		{`string.pack("!>bXi8", 9)`, "\x09\x00\x00\x00\x00\x00\x00\x00"},
		{`string.pack("bxb", 1, 2)`, "\x01\x00\x02"},
		// MQTT CONNECT fixed header plus variable header, as a script writes it.
		{`string.pack(">B B s2 B B I2", 0x10, 12, "MQTT", 4, 2, 60)`, "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c"},
		{`string.unpack(">I2", "\1\2")`, "258"},
		{`select(2, string.unpack(">I2", "\1\2"))`, "3"},
		{`string.unpack("<i2", "\254\255")`, "-2"},
		{`string.unpack(">s1", "\3abcd")`, "abc"},
		{`select(2, string.unpack("z", "ab\0c"))`, "4"},
		{`string.unpack("<J", "\255\255\255\255\255\255\255\255")`, "1.8446744073709552e+19"},
		{`string.unpack(">f", "\63\192\0\0")`, "1.5"},
		{`string.unpack("B", "abc", -1)`, "99"},
		{`string.packsize("!8 b d")`, "16"},
		{`string.packsize("i3 c10 x")`, "14"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := eval(L, tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	L := newState(t)
	tests := []struct {
		expr string
		want string
	}{
		{`string.pack("i2", 40000)`, "bad argument #2 to 'pack' (integer overflow)"},
		{`string.pack("I1", -1)`, "bad argument #2 to 'pack' (unsigned overflow)"},
		{`string.pack("w")`, "invalid format option 'w'"},
		{`string.pack("i", "x")`, "bad argument #2 to 'pack' (number expected, got string)"},
		{`string.pack("i")`, "bad argument #2 to 'pack' (number expected, got no value)"},
		{`string.pack()`, "bad argument #1 to 'pack' (string expected, got no value)"},
		{`string.unpack("i4", "ab")`, "bad argument #2 to 'unpack' (data string too short)"},
		{`string.unpack("b", "ab", 4)`, "bad argument #3 to 'unpack' (initial position out of string)"},
		{`string.packsize("s4")`, "bad argument #1 to 'packsize' (variable-length format)"},
		{`string.packsize("z")`, "bad argument #1 to 'packsize' (variable-length format)"},
		{`string.packsize("i99")`, "integral size (99) out of limits [1,16]"},
		{`string.packsize("c")`, "missing size for format option 'c'"},
		{`string.packsize("!3 i")`, "bad argument #1 to 'packsize' (format asks for alignment not power of 2)"},
		{`string.unpack(string.rep("B", 100000), string.rep("a", 100000))`, "registry overflow"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := eval(L, tt.expr)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			// The position of the caller is prepended, like Lua's error().
			if !strings.Contains(err.Error(), "<string>:1:") {
				t.Errorf("error %q lacks the script position", err)
			}
		})
	}
}

func TestLoader(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	L.PreloadModule("pack", pack.Loader)
	if err := L.DoString(`local p = require("pack"); assert(p.unpack(">I2", p.pack(">I2", 7)) == 7); assert(p.packsize("i") == 4)`); err != nil {
		t.Fatal(err)
	}
}

func TestOpenWithoutStringLib(t *testing.T) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	lua.OpenBase(L)
	pack.Open(L)
	if err := L.DoString(`assert(string.pack("b", 1) == "\1")`); err != nil {
		t.Fatal(err)
	}
}

// benchLoop runs a Lua loop of b.N calls and reports calls per second.
func benchLoop(b *testing.B, body string) {
	L := newState(b)
	fn, err := L.LoadString(`local n = ...
local pack, unpack = string.pack, string.unpack
local s = pack(">I2 i4", 513, -7)
for i = 1, n do ` + body + ` end`)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	L.Push(fn)
	L.Push(lua.LNumber(b.N))
	if err := L.PCall(1, 0, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

func BenchmarkPack(b *testing.B)   { benchLoop(b, `pack(">I2 i4", 513, -7)`) }
func BenchmarkUnpack(b *testing.B) { benchLoop(b, `unpack(">I2 i4", s)`) }
func BenchmarkPackString(b *testing.B) {
	benchLoop(b, `pack(">B s2", 0x30, "sensors/temp")`)
}
func BenchmarkEmptyLoop(b *testing.B) { benchLoop(b, ``) }
