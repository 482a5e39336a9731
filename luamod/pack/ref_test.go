package pack_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// refPrelude is Lua that runs unchanged on gopher-lua and on Lua 5.4: check
// prints what pack, packsize and unpack make of a format, so the two outputs
// can be compared line by line.
const refPrelude = `
local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
local function msg(e) return (tostring(e):gsub("^[^:]*:%d+: ", ""):gsub("'string%.", "'")) end
local function num(v)
  if type(v) ~= "number" then return tostring(v) end
  if v ~= v then return "nan" elseif v == 1/0 then return "inf" elseif v == -1/0 then return "-inf" end
  return string.format("%.17g", v)
end
local function show(ok, ...)
  if not ok then return "error " .. msg((...)) end
  local out = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    out[#out + 1] = type(v) == "string" and hex(v) or num(v)
  end
  return table.concat(out, " ")
end
function check(f, ...)
  print("pack " .. f .. " = " .. show(pcall(string.pack, f, ...)))
  print("size " .. f .. " = " .. show(pcall(string.packsize, f)))
end
function read(f, data, pos)
  print("unpack " .. f .. " " .. hex(data) .. " = " .. show(pcall(string.unpack, f, data, pos)))
end
`

// refCases generates a script of random pack and unpack calls.
func refCases(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString(refPrelude)
	ints := []string{"b", "B", "h", "H", "i", "I", "l", "j", "i1", "i2", "i3", "I3", "i5", "I6", "i7", "I7", "i8", "i9", "i12", "i16", "J", "L", "T", "I8", "I9", "I16"}
	for range n {
		var f strings.Builder
		var args []string
		f.WriteString([]string{"", "<", ">", "=", "!", "!2", "<!4", ">!8", "!16", "!3"}[r.IntN(10)])
		for range 1 + r.IntN(5) {
			switch k := r.IntN(10); {
			case k < 5:
				o := ints[r.IntN(len(ints))]
				f.WriteString(o + " ")
				// Mostly in range, sometimes just outside, sometimes not an integer.
				bits := []int{7, 8, 15, 16, 23, 24, 31, 32, 40, 52, 53}[r.IntN(11)]
				v := r.Int64N(int64(1) << bits)
				if r.IntN(2) == 0 {
					v = -v
				}
				if r.IntN(20) == 0 {
					args = append(args, fmt.Sprintf("%d.5", v))
				} else {
					args = append(args, fmt.Sprint(v))
				}
			case k == 5:
				f.WriteString([]string{"f ", "d ", "n "}[r.IntN(3)])
				args = append(args, []string{"0", "-1.5", "3.25", "1e300", "-0.1", "1/0", "65504"}[r.IntN(7)])
			case k == 6:
				o := []string{"s", "s1", "s2", "s4", "z", "c5", "c0"}[r.IntN(7)]
				f.WriteString(o + " ")
				args = append(args, []string{`""`, `"abc"`, `"a\0b"`, `string.rep("x", 300)`}[r.IntN(4)])
			case k == 7:
				f.WriteString([]string{"x ", "Xi4 ", "Xh ", "Xi8 ", " "}[r.IntN(5)])
			case k == 8:
				f.WriteString([]string{"<", ">", "!4", "!"}[r.IntN(4)])
			default:
				f.WriteString([]string{"i0", "i17", "c", "y", "X", "Xc2", "!0"}[r.IntN(7)])
			}
		}
		fs := fmt.Sprintf("%q", f.String())
		fmt.Fprintf(&b, "check(%s%s)\n", fs, strings.Join(append([]string{""}, args...), ", "))
		// Unpack random bytes with the same format.
		data := make([]byte, r.IntN(40))
		for i := range data {
			data[i] = byte(r.IntN(256))
		}
		var lit strings.Builder
		for _, c := range data {
			fmt.Fprintf(&lit, "\\%d", c)
		}
		fmt.Fprintf(&b, "read(%s, \"%s\", %d)\n", fs, lit.String(), 1+r.IntN(3))
	}
	return b.String()
}

// TestAgainstLua54 compares this package with the reference implementation
// in Lua 5.4 (whose pack is Lua 5.3's) when lua5.4 is installed. Known,
// documented differences are filtered out below.
func TestAgainstLua54(t *testing.T) {
	ref := e2e.NeedPath(t, "lua5.4") // .ci/run installs it: a missing one fails in CI
	script := refCases(1500)
	path := filepath.Join(t.TempDir(), "ref.lua")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := exec.Command(ref, path).CombinedOutput()
	if err != nil {
		t.Fatalf("lua5.4: %v\n%s", err, want)
	}
	L := newState(t)
	var got strings.Builder
	L.SetGlobal("print", L.NewFunction(func(L *lua.LState) int {
		got.WriteString(L.CheckString(1) + "\n")
		return 0
	}))
	if err := L.DoString(script); err != nil {
		t.Fatal(err)
	}
	wl, gl := strings.Split(string(want), "\n"), strings.Split(got.String(), "\n")
	if len(wl) != len(gl) {
		t.Fatalf("lua5.4 printed %d lines, we printed %d", len(wl), len(gl))
	}
	diffs := 0
	for i := range wl {
		if wl[i] != gl[i] && !knownDifference(wl[i], gl[i]) {
			diffs++
			if diffs <= 20 {
				t.Errorf("line %d:\nlua5.4: %s\nwe:     %s", i+1, wl[i], gl[i])
			}
		}
	}
	if diffs > 0 {
		t.Errorf("%d of %d lines differ", diffs, len(wl))
	}
}

// knownDifference reports a documented difference: Lua 5.4 returns 8-byte
// unsigned values as signed integers where we return the unsigned value,
// which is 2^64 more.
func knownDifference(want, got string) bool {
	wt, gt := strings.Fields(want), strings.Fields(got)
	if len(wt) != len(gt) || !strings.HasPrefix(want, "unpack ") {
		return false
	}
	for i := range wt {
		if wt[i] == gt[i] {
			continue
		}
		w, err1 := strconv.ParseFloat(wt[i], 64)
		g, err2 := strconv.ParseFloat(gt[i], 64)
		if err1 != nil || err2 != nil || w >= 0 || math.Abs(g-(w+0x1p64)) > 0x1p12 {
			return false
		}
	}
	return true
}
