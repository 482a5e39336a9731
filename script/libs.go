package script

import (
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/luamod/bit"
	"github.com/wirecat-dev/wirecat/luamod/json"
	"github.com/wirecat-dev/wirecat/luamod/pack"
	"github.com/wirecat-dev/wirecat/script/guard"
)

// Opening the standard libraries costs ~40 KiB per Lua state, too much for
// 10,000 devices. So they are opened once into a template, and a device sees
// them through small per-device proxy tables: reads fall through to the
// shared table (safe from many goroutines: nothing writes it), writes land in
// the device's own proxy. A proxy is made the first time the device names
// its library (most scripts use three or four of the thirteen), by the
// globals' __index.

// libNames are the shared library tables a device sees as globals.
var libNames = []string{"string", "table", "math", "coroutine", "os", "net", "log", "bit", "json", "mqtt", "http", "modbus", "coap", "metrics"}

type sharedLibs struct {
	base  *lua.LTable            // base functions and wirecat's global functions
	libs  map[string]*lua.LTable // shared library tables
	metas map[string]*lua.LTable // {__index = lib}, one per library
	gmeta *lua.LTable            // {__index = base}, the globals' metatable
	conn  *lua.LTable            // metatables of wirecat's userdata
	lst   *lua.LTable
	timer *lua.LTable
	mqtt  *lua.LTable           // an mqtt client
	reg   map[string]lua.LValue // the modules' registry entries (json.null...)
}

var (
	// the templates, [1] with --lua-unsafe
	sharedOnce [2]sync.Once
	shared     [2]*sharedLibs
)

// extraOpeners add wirecat's Lua modules to a fresh state's globals.
var extraOpeners = []func(L *lua.LState){pack.Open, bit.Open, json.Open}

// newLibState is a state with the libraries every script gets (see
// package guard: restricted unless --lua-unsafe, bounded) and wirecat's
// pack, bit and json.
func newLibState() *lua.LState {
	L := guard.NewState()
	for _, open := range extraOpeners {
		open(L)
	}
	return L
}

func libs() *sharedLibs {
	i := 0
	if guard.Current().Unsafe {
		i = 1
	}
	sharedOnce[i].Do(func() { shared[i] = buildLibs() })
	return shared[i]
}

func buildLibs() *sharedLibs {
	L := newLibState()
	g := L.G.Global
	s := &sharedLibs{base: L.NewTable(), libs: map[string]*lua.LTable{}, metas: map[string]*lua.LTable{}}

	math := g.RawGetString("math").(*lua.LTable)
	math.RawSetString("random", L.NewFunction(mathRandom))
	math.RawSetString("randomseed", L.NewFunction(mathRandomSeed))

	g.RawSetString("net", newTable(L, map[string]lua.LGFunction{"connect": netConnect, "listen": netListen}))
	g.RawSetString("http", newTable(L, map[string]lua.LGFunction{"request": httpRequest, "get": httpGet, "serve": httpServe}))
	g.RawSetString("coap", newTable(L, map[string]lua.LGFunction{"request": coapRequest, "serve": coapServe, "observe": coapObserve, "notify": coapNotify}))
	g.RawSetString("modbus", newTable(L, map[string]lua.LGFunction{"connect": modbusConnect, "serve": modbusServe}))
	g.RawSetString("mqtt", newTable(L, map[string]lua.LGFunction{"connect": mqttConnect}))
	g.RawSetString("metrics", newTable(L, map[string]lua.LGFunction{
		"count": luaMetricsCount, "observe": luaMetricsObserve, "gauge": luaMetricsGauge,
	}))
	g.RawSetString("log", newTable(L, map[string]lua.LGFunction{
		"debug": logAt("debug"), "info": logAt("info"), "warn": logAt("warn"), "error": logAt("error"),
	}))
	for _, name := range libNames {
		t, ok := g.RawGetString(name).(*lua.LTable)
		if !ok {
			continue // a module not linked in
		}
		s.libs[name] = t
		m := L.NewTable()
		m.RawSetString("__index", t)
		s.metas[name] = m
	}
	g.ForEach(func(k, v lua.LValue) {
		if ks, ok := k.(lua.LString); ok {
			if _, isLib := s.libs[string(ks)]; !isLib {
				s.base.RawSet(k, v)
			}
		}
	})
	// _G is each device's own; io and require keep state in their Lua state
	// (file handles, loaded modules): with --lua-unsafe each device opens its own.
	s.base.RawSetString("_G", lua.LNil)
	if guard.Current().Unsafe {
		for _, k := range []string{"io", "package"} {
			s.base.RawSetString(k, lua.LNil)
		}
	}
	for k, f := range map[string]lua.LGFunction{
		"print": basePrint, "collectgarbage": func(*lua.LState) int { return 0 },
		"sleep": luaSleep, "every": luaEvery, "after": luaAfter, "now": luaNow, "spawn": luaSpawn,
	} {
		s.base.RawSetString(k, L.NewFunction(f))
	}
	s.reg = map[string]lua.LValue{}
	L.G.Registry.ForEach(func(k, v lua.LValue) {
		if ks, ok := k.(lua.LString); ok && strings.HasPrefix(string(ks), "wirecat.") {
			s.reg[string(ks)] = v
		}
	})
	s.gmeta = L.NewTable()
	s.gmeta.RawSetString("__index", L.NewFunction(s.globalIndex))
	s.conn = methods(L, "conn", connMethods)
	s.lst = methods(L, "listener", listenerMethods)
	s.timer = methods(L, "timer", timerMethods)
	s.mqtt = methods(L, "mqtt client", mqttMethods)
	return s
}

func newTable(L *lua.LState, fns map[string]lua.LGFunction) *lua.LTable {
	t := L.NewTable()
	for k, f := range fns {
		t.RawSetString(k, L.NewFunction(f))
	}
	return t
}

func methods(L *lua.LState, name string, fns map[string]lua.LGFunction) *lua.LTable {
	mt := L.NewTable()
	mt.RawSetString("__index", newTable(L, fns))
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(name))
		return 1
	}))
	mt.RawSetString("__metatable", lua.LString(name))
	return mt
}

// globalIndex is the __index of a device's globals: a library's name makes
// the device's proxy of it (once: it then is a global of its own), any other
// name reads the shared base functions.
func (s *sharedLibs) globalIndex(L *lua.LState) int {
	g, k := L.CheckTable(1), L.Get(2)
	if ks, ok := k.(lua.LString); ok {
		if m := s.metas[string(ks)]; m != nil {
			p := L.CreateTable(0, 0)
			p.Metatable = m
			g.RawSetString(string(ks), p)
			L.Push(p)
			return 1
		}
	}
	L.Push(s.base.RawGet(k))
	return 1
}

// newDeviceGlobals wires a fresh state's globals to the shared libraries.
func newDeviceGlobals(L *lua.LState) {
	s := libs()
	// gopher-lua sizes a state's globals for 64 names and its registry for
	// 32, some 5 KiB a device; a device's hold a handful.
	g := L.CreateTable(0, 8)
	L.G.Global, L.Env = g, g
	L.G.Registry = L.CreateTable(0, len(s.reg)+2)
	L.SetMetatable(g, s.gmeta)
	g.RawSetString("_G", g)
	for k, v := range s.reg {
		L.G.Registry.RawSetString(k, v)
	}
	// Strings' methods are the device's own string table, as in Lua.
	sm := L.CreateTable(0, 1)
	sm.RawSetString("__index", L.GetGlobal("string"))
	L.SetMetatable(lua.LString(""), sm)
	if guard.Current().Unsafe {
		for _, lib := range []struct {
			name string
			open lua.LGFunction
		}{{lua.LoadLibName, lua.OpenPackage}, {lua.IoLibName, lua.OpenIo}} {
			L.Push(L.NewFunction(lib.open))
			L.Push(lua.LString(lib.name))
			L.Call(1, 0)
		}
	}
}
