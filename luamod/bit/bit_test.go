package bit_test

import (
	"math"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/internal/luatest"
	"github.com/wirecat-dev/wirecat/luamod/bit"
)

func TestLua(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	bit.Open(L)
	luatest.Run(t, L, "testdata/bit_test.lua")
}

func TestToBit(t *testing.T) {
	tests := []struct {
		in   float64
		want int32
	}{
		{0, 0},
		{1, 1},
		{-1, -1},
		{4294967295, -1},
		{4294967296, 0},
		{2147483648, math.MinInt32},
		{-2147483649, math.MaxInt32},
		{0.5, 0},
		{1.5, 2},
		{-2.5, -2},
		{1e20, 1661992960}, // 10^20 mod 2^32
		{-1e20, -1661992960},
		{math.Ldexp(1, 80) + math.Ldexp(1, 40), 0},
		{math.NaN(), 0},
		{math.Inf(-1), 0},
	}
	for _, tt := range tests {
		if got := bit.ToBit(tt.in); got != tt.want {
			t.Errorf("ToBit(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestLoader(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	L.PreloadModule("bit", bit.Loader)
	if err := L.DoString(`local b = require("bit"); assert(b.tohex(b.bor(0xf0, 0x0f), 2) == "ff")`); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkBand(b *testing.B) {
	L := lua.NewState()
	defer L.Close()
	bit.Open(L)
	fn, err := L.LoadString(`local n = ...; local band = bit.band; for i = 1, n do band(i, 0xff) end`)
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
