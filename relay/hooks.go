package relay

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/wirecat-dev/wirecat/diag"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/luamod/bit"
	"github.com/wirecat-dev/wirecat/luamod/json"
	"github.com/wirecat-dev/wirecat/luamod/pack"
	"github.com/wirecat-dev/wirecat/script/guard"
)

// ErrBadScript is matched (errors.Is) by the errors of LoadHooks that mean
// the script cannot be used at all: unreadable, not Lua, or no hooks in it.
// The CLI turns them into usage errors.
var ErrBadScript = errors.New("bad hook script")

// Hooks runs a hook script's on_open(conn), on_message(conn, dir, msg) and
// on_close(conn). One Lua state serves every connection and calls take turns
// (a mutex), so a script's globals are shared by all connections while no
// state is ever touched by two goroutines at once. Every call runs under the
// guard (package script/guard): over the --lua-timeout budget it is stopped
// and that connection's hooks with it; over the --lua-memory cap the state
// itself is dropped, since what a shared state holds cannot be pinned on one
// connection, and every connection goes on unmodified.
type Hooks struct {
	mu                         sync.Mutex
	L                          *lua.LState
	slot                       *guard.Slot
	name                       string
	onOpen, onMessage, onClose *lua.LFunction
	log                        *diag.Log
	off                        error // why the state was dropped: no hook runs any more
}

// LoadHooks reads, compiles and runs the script at path, which defines the
// hooks as globals. print() in the script writes to log.
func LoadHooks(path string, log *diag.Log) (*Hooks, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadScript, err)
	}
	return NewHooks(filepath.Base(path), src, log)
}

// NewHooks is LoadHooks for a script already in memory; name is used in
// error messages.
func NewHooks(name string, src []byte, log *diag.Log) (*Hooks, error) {
	fn, err := compile(name, src)
	if err != nil {
		return nil, err
	}
	// The libraries of a device script: no os.execute, os.exit, io or
	// dofile unless --lua-unsafe.
	L := guard.NewState()
	pack.Open(L)
	bit.Open(L)
	json.Open(L)
	h := &Hooks{L: L, name: name, log: log, slot: guard.NewHookSlot(name)}
	guard.Attach(L, h.slot)
	L.SetContext(h.slot.Context())
	L.SetGlobal("print", L.NewFunction(h.print))
	L.Push(L.NewFunctionFromProto(fn))
	if err := h.protectWith(loadBudget, func() error { return L.PCall(0, 0, nil) }); err != nil {
		h.Close()
		return nil, fmt.Errorf("hook script %s", err)
	}
	get := func(n string) *lua.LFunction {
		f, _ := L.GetGlobal(n).(*lua.LFunction)
		return f
	}
	h.onOpen, h.onMessage, h.onClose = get("on_open"), get("on_message"), get("on_close")
	if h.onOpen == nil && h.onMessage == nil && h.onClose == nil {
		h.Close()
		return nil, fmt.Errorf("%w: %s defines none of on_open, on_message, on_close", ErrBadScript, name)
	}
	return h, nil
}

func compile(name string, src []byte) (*lua.FunctionProto, error) {
	if bytes.HasPrefix(src, []byte("#!")) { // keep line numbers right
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			src = src[i:]
		} else {
			src = nil
		}
	}
	chunk, err := parse.Parse(bytes.NewReader(src), name)
	if err != nil {
		var pe *parse.Error
		if errors.As(err, &pe) {
			msg := strings.TrimSpace(pe.Message)
			if pe.Pos.Line == parse.EOF {
				return nil, fmt.Errorf("%w: %s: %s at end of file", ErrBadScript, name, msg)
			}
			if pe.Token != "" {
				msg += fmt.Sprintf(" near '%s'", pe.Token)
			}
			return nil, fmt.Errorf("%w: %s:%d: %s", ErrBadScript, name, pe.Pos.Line, msg)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrBadScript, name, err)
	}
	fn, err := lua.Compile(chunk, name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadScript, name, err)
	}
	return fn, nil
}

// Close releases the Lua state.
func (h *Hooks) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.off == nil {
		h.off = errors.New("closed")
	}
	h.drop()
	h.slot.Close()
}

// drop closes the state once it is off, after the call that turned it off
// has unwound.
func (h *Hooks) drop() {
	if h.off != nil && h.L != nil {
		h.L.Close()
		h.L = nil
		h.onOpen, h.onMessage, h.onClose = nil, nil, nil
	}
}

func (h *Hooks) print(L *lua.LState) int {
	parts := make([]string, L.GetTop())
	for i := range parts {
		parts[i] = L.ToStringMeta(L.Get(i + 1)).String()
	}
	h.log.Notef("%s: %s", h.name, strings.Join(parts, "\t"))
	return 0
}

// protect runs call under the guard and turns a Lua error into
// "script:line: message". A call over its time budget leaves the state
// usable: the slot gets a fresh context for the next call. One over the
// memory cap drops the state (see Hooks).
func (h *Hooks) protect(call func() error) error { return h.protectWith(0, call) }

// loadBudget is the time budget of a hook script's top level: it runs once,
// before any traffic waits for it, and may build tables a hook then reads.
const loadBudget = time.Second

// protectWith is protect with a budget of its own for this call (0: the
// hooks' budget).
func (h *Hooks) protectWith(budget time.Duration, call func() error) error {
	if budget > 0 {
		h.slot.EnterWith(max(budget, guard.Current().HookTimeout))
	} else {
		h.slot.Enter()
	}
	err := call()
	if lerr := h.slot.Leave(); lerr != nil {
		var le *guard.LimitError
		if errors.As(lerr, &le) && le.Memory {
			h.off = lerr
			h.log.Notef("%v; hooks are off for every connection, which go on unmodified", lerr)
			return lerr
		}
		h.L.SetContext(h.slot.Reset())
		return lerr
	}
	if err == nil {
		return nil
	}
	var ae *lua.ApiError
	if errors.As(err, &ae) && ae.Object != nil {
		msg := ae.Object.String()
		if !strings.HasPrefix(msg, h.name+":") {
			msg = h.name + ": " + msg
		}
		return errors.New(msg)
	}
	return err
}

// hookConn is one connection's view of the hooks.
type hookConn struct {
	h       *Hooks
	p       *pair
	t       *lua.LTable
	stopped bool // an error stopped this connection's hooks
}

// open makes the conn table and calls on_open.
func (h *Hooks) open(p *pair) *hookConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.drop()
	if h.off != nil {
		return &hookConn{h: h, p: p, stopped: true}
	}
	t := h.L.NewTable()
	t.RawSetString("id", lua.LNumber(p.id))
	t.RawSetString("client", lua.LString(p.client.addr))
	t.RawSetString("server", lua.LString(p.server.addr))
	t.RawSetString("transport", lua.LString(p.transport))
	t.RawSetString("target", lua.LString(p.r.cfg.Target.String()))
	hc := &hookConn{h: h, p: p, t: t}
	if h.onOpen != nil && h.off == nil {
		hc.call("on_open", h.onOpen, 0, t)
	}
	return hc
}

// call runs one hook; an error stops this connection's hooks.
func (hc *hookConn) call(name string, fn *lua.LFunction, nret int, args ...lua.LValue) bool {
	h := hc.h
	err := h.protect(func() error {
		return h.L.CallByParam(lua.P{Fn: fn, NRet: nret, Protect: true}, args...)
	})
	switch {
	case errors.Is(err, guard.ErrStopped):
		hc.stopped = true // wirecat is ending: no more hooks, nothing to report
		return false
	case h.off != nil && err != nil:
		hc.stopped = true // reported once, by protect
		hc.p.emit(event.Error, 0, nil, err)
		return false
	case err != nil:
		hc.fail(fmt.Errorf("%s: %w", name, err))
		return false
	}
	return true
}

func (hc *hookConn) fail(err error) {
	hc.stopped = true
	hc.h.log.Notef("conn %d: %v; hooks stopped for this connection, which goes on unmodified", hc.p.id, err)
	hc.p.emit(event.Error, 0, nil, err)
}

// message runs on_message for one message from side from and returns what
// to send on: the message itself, a rewrite, several, or none.
func (hc *hookConn) message(from event.Side, msg []byte) [][]byte {
	h := hc.h
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.drop()
	if hc.stopped || h.off != nil || h.onMessage == nil {
		return [][]byte{msg}
	}
	L := h.L
	base := L.GetTop()
	if !hc.call("on_message", h.onMessage, lua.MultRet, hc.t, lua.LString(from.String()), lua.LString(msg)) {
		L.SetTop(base)
		return [][]byte{msg}
	}
	defer L.SetTop(base)
	if L.GetTop() == base {
		return [][]byte{msg} // no return value: unchanged
	}
	out, err := results(L.Get(base + 1))
	if err != nil {
		hc.fail(fmt.Errorf("on_message: %s: %w", h.name, err))
		return [][]byte{msg}
	}
	return out
}

// results reads what on_message returned.
func results(v lua.LValue) ([][]byte, error) {
	switch v := v.(type) {
	case lua.LString:
		return [][]byte{[]byte(string(v))}, nil
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		if !v {
			return nil, nil
		}
	case *lua.LTable:
		n := v.Len()
		out := make([][]byte, 0, n)
		for i := 1; i <= n; i++ {
			s, ok := v.RawGetInt(i).(lua.LString)
			if !ok {
				return nil, fmt.Errorf("item %d of the returned list is a %s, not a string", i, v.RawGetInt(i).Type())
			}
			out = append(out, []byte(string(s)))
		}
		return out, nil
	}
	return nil, fmt.Errorf("returned a %s: want the message (a string), a list of strings, or nil to drop it", v.Type())
}

// close calls on_close.
func (hc *hookConn) close() {
	h := hc.h
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.drop()
	if !hc.stopped && h.off == nil && h.onClose != nil {
		hc.call("on_close", h.onClose, 0, hc.t)
	}
}
