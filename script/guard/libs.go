package guard

import (
	"slices"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// The libraries every script gets, device, hook or framer: base (without
// dofile, loadfile, require and module), table, string, math, coroutine, and
// of os only the clock (time, clock, date, difftime). A script reads and
// shapes bytes; it does not run commands, touch files or end the process.
// With Limits.Unsafe it also gets the whole os library but os.exit, io, and
// dofile, loadfile and require: the opt-in for a hook that must log to a
// file, say.

// osSafe are the os functions every script may call.
var osSafe = []string{"time", "clock", "date", "difftime"}

// closed are the base functions a script gets only with Limits.Unsafe.
var closed = []string{"dofile", "loadfile", "require", "module"}

// NewState is a fresh state with the script libraries opened and bounded,
// restricted unless Limits.Unsafe is set.
func NewState() *lua.LState {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	unsafe := Current().Unsafe
	libs := []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath},
		{lua.CoroutineLibName, lua.OpenCoroutine}, {lua.OsLibName, lua.OpenOs}}
	if unsafe {
		libs = append(libs, struct {
			name string
			open lua.LGFunction
		}{lua.IoLibName, lua.OpenIo})
	}
	for _, lib := range libs {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	Bound(L)
	fixResume(L)
	Restrict(L, L.G.Global, unsafe)
	return L
}

// Restrict takes out of g (the globals of L, or a template of them) what a
// script may not use: the os functions beyond the clock, io, and the base
// functions that read files. With unsafe, only os.exit goes: it would end
// wirecat without closing connections or flushing a recording.
func Restrict(L *lua.LState, g *lua.LTable, unsafe bool) {
	osFull, _ := g.RawGetString("os").(*lua.LTable)
	if osFull != nil {
		osT := L.NewTable()
		osFull.ForEach(func(k, v lua.LValue) {
			if unsafe || slices.Contains(osSafe, k.String()) {
				osT.RawSet(k, v)
			} else {
				osT.RawSet(k, refuse(L, "os."+k.String()))
			}
		})
		osT.RawSetString("exit", L.NewFunction(osExit))
		g.RawSetString("os", osT)
	}
	if unsafe {
		return
	}
	for _, k := range closed {
		g.RawSetString(k, refuse(L, k))
	}
	for _, k := range []string{"io", "package"} {
		t := L.NewTable()
		mt := L.NewTable()
		mt.RawSetString("__index", refuse(L, k))
		t.Metatable = mt
		g.RawSetString(k, t)
	}
}

// refuse stands in for a function a script may not call, saying so.
func refuse(L *lua.LState, name string) *lua.LFunction {
	return L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("%s is not available to wirecat scripts (--lua-unsafe opens it)", name)
		return 0
	})
}

func osExit(L *lua.LState) int {
	L.RaiseError("os.exit is not available: wirecat would end without closing its connections and recordings; use error() to stop this script")
	return 0
}

// Bound replaces, in L's string and table libraries, the functions that can
// make a string of any size in one Go call, which no context can interrupt,
// by versions that refuse a result over MaxString.
func Bound(L *lua.LState) {
	if str, ok := L.GetGlobal("string").(*lua.LTable); ok {
		str.RawSetString("rep", L.NewFunction(strRep))
		str.RawSetString("format", wrapFormat(L, str.RawGetString("format")))
		str.RawSetString("gsub", wrapGsub(L, str.RawGetString("gsub")))
	}
	if tbl, ok := L.GetGlobal("table").(*lua.LTable); ok {
		tbl.RawSetString("concat", wrapConcat(L, tbl.RawGetString("concat")))
	}
}

var slotKey = lua.LString("wirecat.guard.slot")

// Attach tells the bounded functions of L which slot to charge.
func Attach(L *lua.LState, s *Slot) {
	ud := L.NewUserData()
	ud.Value = s
	L.G.Registry.RawSet(slotKey, ud)
}

func slotOf(L *lua.LState) *Slot {
	if ud, ok := L.G.Registry.RawGet(slotKey).(*lua.LUserData); ok {
		s, _ := ud.Value.(*Slot)
		return s
	}
	return nil
}

// made checks a result of n bytes against MaxString and charges it.
func made(L *lua.LState, fn string, n int64) {
	if max := int64(MaxString()); n > max {
		L.RaiseError("%s: the result would be %d bytes, over the %d a string may have (a quarter of --lua-memory, at most 64 MiB)", fn, n, max)
	}
	if n >= 4096 {
		slotOf(L).Made(int(n))
	}
}

func strRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	if n <= 0 || len(s) == 0 {
		L.Push(lua.LString(""))
		return 1
	}
	if int64(n) > (1<<62)/int64(len(s)) {
		made(L, "string.rep", 1<<62)
	}
	made(L, "string.rep", int64(len(s))*int64(n))
	L.Push(lua.LString(strings.Repeat(s, n)))
	return 1
}

func goFn(v lua.LValue) lua.LGFunction {
	if f, ok := v.(*lua.LFunction); ok && f.IsG {
		return f.GFunction
	}
	return nil
}

// wrapFormat refuses a width or precision over two digits, as Lua 5.1 does:
// Go's fmt would pad to any width asked.
func wrapFormat(L *lua.LState, orig lua.LValue) lua.LValue {
	f := goFn(orig)
	if f == nil {
		return orig
	}
	return L.NewFunction(func(L *lua.LState) int {
		format := L.CheckString(1)
		for i := 0; i < len(format); i++ {
			if format[i] != '%' {
				continue
			}
			digits := 0
			for i++; i < len(format) && strings.IndexByte("-+ #0123456789.", format[i]) >= 0; i++ {
				if format[i] >= '0' && format[i] <= '9' {
					digits++
					if digits > 2 {
						L.RaiseError("invalid format (width or precision too long)")
					}
				} else {
					digits = 0
				}
			}
		}
		return f(L)
	})
}

// wrapGsub bounds what a string replacement can make: each match adds at
// most the replacement, whose %0..%9 each add at most the subject again.
// A function or table replacement goes through the VM or holds strings that
// exist already, so it is left to the watchdog.
func wrapGsub(L *lua.LState, orig lua.LValue) lua.LValue {
	f := goFn(orig)
	if f == nil {
		return orig
	}
	return L.NewFunction(func(L *lua.LState) int {
		s := L.CheckString(1)
		if repl, ok := L.Get(3).(lua.LString); ok {
			r := string(repl)
			refs := int64(strings.Count(r, "%"))
			n := int64(len(s)) + 1
			if max, ok := L.Get(4).(lua.LNumber); ok && int64(max) >= 0 && int64(max) < n {
				n = int64(max)
			}
			made(L, "string.gsub", int64(len(s))*(1+refs)+n*int64(len(r)))
		}
		return f(L)
	})
}

func wrapConcat(L *lua.LState, orig lua.LValue) lua.LValue {
	f := goFn(orig)
	if f == nil {
		return orig
	}
	return L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		sep := int64(len(L.OptString(2, "")))
		i, j := L.OptInt(3, 1), L.OptInt(4, t.Len())
		var n int64
		for k := i; k <= j && k <= t.Len(); k++ {
			switch v := t.RawGetInt(k).(type) {
			case lua.LString:
				n += int64(len(v)) + sep
			default:
				n += 24 + sep // a number's text
			}
		}
		made(L, "table.concat", n)
		return f(L)
	})
}
