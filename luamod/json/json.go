// Package json gives gopher-lua a json module: json.encode, json.decode,
// json.null and json.array.
//
// Both functions raise a Lua error on bad input, with a message that starts
// with "json.encode:" or "json.decode:". Encoding is deterministic: object
// keys are sorted, so recordings and tests are stable.
package json

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

// MaxDepth bounds nesting in both directions, so hostile input cannot
// exhaust the Go stack.
const MaxDepth = 1000

const (
	regNull  = "wirecat.json.null"
	regArray = "wirecat.json.array"
)

// Open sets the global table json.
func Open(L *lua.LState) {
	L.SetGlobal("json", newModule(L))
}

// Loader is a lua.LGFunction for L.PreloadModule("json", json.Loader).
func Loader(L *lua.LState) int {
	L.Push(newModule(L))
	return 1
}

func newModule(L *lua.LState) *lua.LTable {
	null, _ := markers(L)
	t := L.CreateTable(0, 4)
	t.RawSetString("encode", L.NewFunction(luaEncode))
	t.RawSetString("decode", L.NewFunction(luaDecode))
	t.RawSetString("array", L.NewFunction(luaArray))
	t.RawSetString("null", null)
	return t
}

// markers returns the state's json.null value and the metatable that marks
// tables as JSON arrays, creating them on first use. They live in the
// registry so Open, Loader and the Go API all agree on them.
func markers(L *lua.LState) (*lua.LUserData, *lua.LTable) {
	reg := L.G.Registry
	null, ok1 := reg.RawGetString(regNull).(*lua.LUserData)
	arr, ok2 := reg.RawGetString(regArray).(*lua.LTable)
	if ok1 && ok2 {
		return null, arr
	}
	null = L.NewUserData()
	mt := L.NewTable()
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString("null"))
		return 1
	}))
	null.Metatable = mt
	arr = L.NewTable()
	arr.RawSetString("__jsontype", lua.LString("array"))
	reg.RawSetString(regNull, null)
	reg.RawSetString(regArray, arr)
	return null, arr
}

// Null returns the state's json.null sentinel.
func Null(L *lua.LState) lua.LValue {
	null, _ := markers(L)
	return null
}

// IsNull reports whether v is json.null.
func IsNull(L *lua.LState, v lua.LValue) bool {
	null, _ := markers(L)
	return v == null
}

// MarkArray makes t encode as a JSON array even when it is empty.
func MarkArray(L *lua.LState, t *lua.LTable) {
	_, arr := markers(L)
	t.Metatable = arr
}

func luaEncode(L *lua.LState) int {
	if L.GetTop() < 1 {
		L.RaiseError("bad argument #1 to 'encode' (value expected)")
	}
	b, err := Encode(L, L.Get(1))
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	L.Push(lua.LString(b))
	return 1
}

func luaDecode(L *lua.LState) int {
	s, ok := L.Get(1).(lua.LString)
	if !ok {
		L.RaiseError("bad argument #1 to 'decode' (string expected, got %s)", typeName(L, 1))
	}
	v, err := Decode(L, []byte(s))
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	L.Push(v)
	return 1
}

// luaArray marks a table (a new one when called without arguments) as a
// JSON array and returns it.
func luaArray(L *lua.LState) int {
	_, arr := markers(L)
	var t *lua.LTable
	switch v := L.Get(1).(type) {
	case *lua.LNilType:
		t = L.NewTable()
	case *lua.LTable:
		t = v
		if mt, ok := t.Metatable.(*lua.LTable); ok && mt != arr {
			L.RaiseError("json.array: table already has a metatable")
		}
	default:
		L.RaiseError("bad argument #1 to 'array' (table expected, got %s)", typeName(L, 1))
	}
	t.Metatable = arr
	L.Push(t)
	return 1
}

func typeName(L *lua.LState, n int) string {
	if n > L.GetTop() {
		return "no value"
	}
	return L.Get(n).Type().String()
}

// Error is a decode or encode failure.
type Error struct {
	Op     string // "encode" or "decode"
	Msg    string
	Offset int // byte offset in the input for decode errors, -1 otherwise
}

func (e *Error) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("json.%s: %s at offset %d", e.Op, e.Msg, e.Offset)
	}
	return fmt.Sprintf("json.%s: %s", e.Op, e.Msg)
}
