package guard

import (
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// Every script state (device, hook, framer) gets a coroutine library whose
// resume adjusts a yield's results as a return would: missing ones are nil.
func TestResumeGivesNilForMissingResults(t *testing.T) {
	L := NewState()
	defer L.Close()
	var out []string
	L.SetGlobal("out", L.NewFunction(func(L *lua.LState) int {
		for i := 1; i <= L.GetTop(); i++ {
			out = append(out, L.Get(i).Type().String())
		}
		return 0
	}))
	err := L.DoString(`
local co = coroutine.create(function() local a, b, c = coroutine.yield() out(a, b, c) end)
coroutine.resume(co)
assert(coroutine.resume(co, 1))
local f = coroutine.wrap(function() local a, b = coroutine.yield() out(a, b) end)
f()
f("x")
`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(out, " "), "number nil nil string nil"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
