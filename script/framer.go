package script

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/proto"
	"github.com/wirecat-dev/wirecat/script/guard"
)

// codec frames a device connection: a Go framer, or a framer table whose
// functions run in the device's own Lua state.
type codec interface {
	decode(L *lua.LState, buf []byte) ([]byte, int, error)
	encode(L *lua.LState, msg []byte) ([]byte, error)
	finish(L *lua.LState, rest []byte) ([]byte, error)
	split(L *lua.LState, payload []byte) ([][]byte, error)
}

type goCodec struct{ f proto.Framer }

func (g goCodec) decode(_ *lua.LState, buf []byte) ([]byte, int, error) { return g.f.Decode(buf) }
func (g goCodec) encode(_ *lua.LState, msg []byte) ([]byte, error)      { return g.f.Encode(nil, msg) }
func (g goCodec) finish(_ *lua.LState, rest []byte) ([]byte, error)     { return finishRest(g.f, rest) }
func (g goCodec) split(L *lua.LState, p []byte) ([][]byte, error)       { return splitWith(L, g, p) }

func finishRest(f proto.Framer, rest []byte) ([]byte, error) {
	if len(rest) == 0 {
		return nil, nil
	}
	if fin, ok := f.(proto.Finisher); ok {
		return fin.Finish(rest)
	}
	return nil, fmt.Errorf("truncated message: %d bytes left at end of stream", len(rest))
}

// splitWith cuts one datagram into messages; a raw datagram is one message.
func splitWith(L *lua.LState, c codec, p []byte) ([][]byte, error) {
	if g, ok := c.(goCodec); ok && proto.IsRaw(g.f) {
		return [][]byte{p}, nil
	}
	var out [][]byte
	for len(p) > 0 {
		m, n, err := c.decode(L, p)
		if err != nil {
			return out, err
		}
		if n == 0 {
			m, err := c.finish(L, p)
			if m != nil {
				out = append(out, m)
			}
			return out, err
		}
		if m != nil { // nil: n bytes of filler (an empty slip or cobs frame)
			out = append(out, append([]byte{}, m...))
		}
		p = p[n:]
	}
	return out, nil
}

func tableCodec(t *lua.LTable, name string) (*tableFramer, error) {
	f := &tableFramer{name: name}
	var ok bool
	if f.dec, ok = t.RawGetString("decode").(*lua.LFunction); !ok {
		return nil, fmt.Errorf("%s: no decode function", name)
	}
	if v := t.RawGetString("encode"); v != lua.LNil {
		if f.enc, ok = v.(*lua.LFunction); !ok {
			return nil, fmt.Errorf("%s: encode is a %s, want a function", name, v.Type())
		}
	}
	if v := t.RawGetString("finish"); v != lua.LNil {
		if f.fin, ok = v.(*lua.LFunction); !ok {
			return nil, fmt.Errorf("%s: finish is a %s, want a function", name, v.Type())
		}
	}
	return f, nil
}

// tableFramer calls a framer table's functions in whatever state runs it.
type tableFramer struct {
	name          string // for errors: the file, or "framer"
	dec, enc, fin *lua.LFunction
	// the last buffer handed to decode, as a Lua string: when the next buffer
	// is a strict tail of it (the caller consumed a message), it is a
	// substring, not a copy. A buffer of the same length at the same address
	// is copied again: a reader that compacts its buffer and refills it to
	// the old length hands over different bytes in the same place.
	prev  []byte
	prevS string
}

func (f *tableFramer) str(buf []byte) lua.LString {
	if n := len(buf); n > 0 && n < len(f.prev) && unsafe.SliceData(buf) == &f.prev[len(f.prev)-n] {
		return lua.LString(f.prevS[len(f.prevS)-n:])
	}
	f.prev = buf
	f.prevS = string(buf)
	return lua.LString(f.prevS)
}

func (f *tableFramer) decode(L *lua.LState, buf []byte) ([]byte, int, error) {
	if err := L.CallByParam(lua.P{Fn: f.dec, NRet: 2, Protect: true}, f.str(buf)); err != nil {
		return nil, 0, fmt.Errorf("%s: decode: %s", f.name, luaErrMsg(err))
	}
	mv, nv := L.Get(-2), L.Get(-1)
	L.Pop(2)
	return checkDecode(f.name, mv, nv, len(buf))
}

// checkDecode turns decode's results into a message and a count, refusing
// anything that would make the caller hang or overrun. nil (alone, or with
// 0) asks for more bytes; nil with a positive count skips that many bytes
// of filler, as the Go framers do.
func checkDecode(name string, mv, nv lua.LValue, have int) ([]byte, int, error) {
	var msg []byte
	switch m := mv.(type) {
	case *lua.LNilType:
		if _, ok := nv.(lua.LNumber); !ok {
			return nil, 0, nil
		}
	case lua.LString:
		msg = make([]byte, len(m)) // never nil: "" is an empty message
		copy(msg, m)
	default:
		return nil, 0, fmt.Errorf("%s: decode returned a %s, want a string or nil", name, mv.Type())
	}
	nn, ok := nv.(lua.LNumber)
	if !ok {
		return nil, 0, fmt.Errorf("%s: decode returned a message without the number of bytes used", name)
	}
	f := float64(nn)
	switch {
	case f != f || f != float64(int64(f)) && f > -1e18 && f < 1e18:
		return nil, 0, fmt.Errorf("%s: decode returned %v bytes used, want a whole number", name, nn)
	case f < 0:
		return nil, 0, fmt.Errorf("%s: decode returned %v bytes used, a negative count", name, nn)
	case f > float64(have):
		return nil, 0, fmt.Errorf("%s: decode used %v bytes of the %d it was given", name, nn, have)
	case f == 0 && msg != nil:
		return nil, 0, fmt.Errorf("%s: decode returned 0 bytes used with a message", name)
	}
	return msg, int(f), nil
}

func (f *tableFramer) encode(L *lua.LState, msg []byte) ([]byte, error) {
	if f.enc == nil {
		return msg, nil
	}
	if err := L.CallByParam(lua.P{Fn: f.enc, NRet: 1, Protect: true}, lua.LString(msg)); err != nil {
		return nil, fmt.Errorf("%s: encode: %s", f.name, luaErrMsg(err))
	}
	v := L.Get(-1)
	L.Pop(1)
	s, ok := v.(lua.LString)
	if !ok {
		return nil, fmt.Errorf("%s: encode returned a %s, want a string", f.name, v.Type())
	}
	return []byte(s), nil
}

func (f *tableFramer) finish(L *lua.LState, rest []byte) ([]byte, error) {
	if len(rest) == 0 {
		return nil, nil
	}
	if f.fin == nil {
		return nil, fmt.Errorf("%s: truncated message: %d bytes left at end of stream", f.name, len(rest))
	}
	if err := L.CallByParam(lua.P{Fn: f.fin, NRet: 1, Protect: true}, lua.LString(rest)); err != nil {
		return nil, fmt.Errorf("%s: finish: %s", f.name, luaErrMsg(err))
	}
	v := L.Get(-1)
	L.Pop(1)
	switch s := v.(type) {
	case lua.LString:
		return []byte(s), nil
	case *lua.LNilType:
		return nil, nil
	}
	return nil, fmt.Errorf("%s: finish returned a %s, want a string or nil", f.name, v.Type())
}

func (f *tableFramer) split(L *lua.LState, p []byte) ([][]byte, error) { return splitWith(L, f, p) }

// LuaFramer is a proto.Framer defined by a framer script. Each call runs
// in a Lua state of its own while it runs, taken from a small pool, so one
// connection's runaway decode holds one state and not the others'
// connections; it is safe for concurrent use. Every call runs under the
// guard's budget: a call over it fails (its connection ends) and its state
// is thrown away.
type LuaFramer struct {
	name  string
	proto *lua.FunctionProto
	mu    sync.Mutex
	idle  []*framerState
}

// maxIdleFramers is how many idle states a framer keeps: about as many as
// calls that run at once on a few cores; more would be memory for nothing.
const maxIdleFramers = 8

// framerState is one Lua state running the framer script.
type framerState struct {
	L    *lua.LState
	f    *tableFramer
	slot *guard.Slot
}

// LoadFunc is a proto.LoadFunc that handles lua:FILE framing specs. Its
// errors (a missing file, a syntax error, a script that returns no framer)
// match proto.ErrBadSpec: the spec on the command line is what is wrong.
func LoadFunc(kind, arg string) (proto.Framer, error) {
	if kind != "lua" {
		return nil, badSpec{fmt.Errorf("unknown framing kind %q", kind)}
	}
	f, err := LoadFramer(arg)
	if err != nil {
		return nil, badSpec{err}
	}
	return f, nil
}

// badSpec marks a framer script that cannot be loaded as a bad framing spec,
// keeping its message and its cause (os.ErrNotExist, ErrSyntax).
type badSpec struct{ error }

func (e badSpec) Unwrap() error        { return e.error }
func (e badSpec) Is(target error) bool { return target == proto.ErrBadSpec }

// LoadFramer runs a framer script, which must return a table with decode
// (and, usually, encode) functions, and returns it as a proto.Framer.
func LoadFramer(path string) (*LuaFramer, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read framer script: %w", err)
	}
	return NewFramer(filepath.Base(path), src)
}

// NewFramer is LoadFramer for a script already in memory.
func NewFramer(name string, src []byte) (*LuaFramer, error) {
	p, err := Compile(name, src)
	if err != nil {
		return nil, err
	}
	lf := &LuaFramer{name: name, proto: p.proto}
	st, err := lf.newState()
	if err != nil {
		return nil, err
	}
	lf.put(st)
	return lf, nil
}

// newState runs the script in a fresh state and checks what it returns.
func (lf *LuaFramer) newState() (*framerState, error) {
	L := newLibState()
	slot := guard.NewSlot(nil, lf.name)
	guard.Attach(L, slot)
	L.SetContext(slot.Context())
	L.SetGlobal("print", L.NewFunction(lf.print))
	st := &framerState{L: L, slot: slot}
	L.Push(L.NewFunctionFromProto(lf.proto))
	if err := st.run(func() error { return L.PCall(0, 1, nil) }); err != nil {
		st.close()
		return nil, fmt.Errorf("%s: %s", lf.name, reason(err))
	}
	t, ok := L.Get(-1).(*lua.LTable)
	L.Pop(1)
	if !ok {
		st.close()
		return nil, fmt.Errorf("%s: the script must return a table with decode and encode functions", lf.name)
	}
	f, err := tableCodec(t, lf.name)
	if err != nil {
		st.close()
		return nil, err
	}
	st.f = f
	return st, nil
}

// print writes to stderr: stdout is where a framer's messages go.
func (lf *LuaFramer) print(L *lua.LState) int {
	parts := make([]string, L.GetTop())
	for i := range parts {
		parts[i] = L.ToStringMeta(L.Get(i + 1)).String()
	}
	fmt.Fprintf(os.Stderr, "wirecat: %s: %s\n", lf.name, strings.Join(parts, "\t"))
	return 0
}

// run runs one call under the guard; a bound it hit is its error.
func (st *framerState) run(call func() error) error {
	st.slot.Enter()
	err := call()
	if lerr := st.slot.Leave(); lerr != nil {
		return lerr
	}
	return err
}

func (st *framerState) close() {
	st.L.Close()
	st.slot.Close()
}

// reason is what a failed call says: the bound it hit, or its Lua error.
func reason(err error) string {
	var le *guard.LimitError
	if errors.As(err, &le) {
		return le.Reason()
	}
	return luaErrMsg(err)
}

// get takes an idle state, or makes one.
func (lf *LuaFramer) get() (*framerState, error) {
	lf.mu.Lock()
	if n := len(lf.idle); n > 0 {
		st := lf.idle[n-1]
		lf.idle = lf.idle[:n-1]
		lf.mu.Unlock()
		return st, nil
	}
	lf.mu.Unlock()
	return lf.newState()
}

// put gives a state back, unless a bound stopped it (its stack and globals
// are whatever the runaway left) or enough are idle.
func (lf *LuaFramer) put(st *framerState) {
	if st.slot.Err() == nil {
		lf.mu.Lock()
		if len(lf.idle) < maxIdleFramers {
			lf.idle = append(lf.idle, st)
			lf.mu.Unlock()
			return
		}
		lf.mu.Unlock()
	}
	st.close()
}

// with runs fn with a state of the pool.
func (lf *LuaFramer) with(fn func(st *framerState) error) error {
	st, err := lf.get()
	if err != nil {
		return err
	}
	defer lf.put(st)
	return fn(st)
}

// limited turns a call's error into the bound it hit, when it hit one.
func (st *framerState) limited(what string, err error) error {
	if lerr := st.slot.Leave(); lerr != nil {
		return &boundError{msg: fmt.Sprintf("%s: %s: %s", st.f.name, what, reason(lerr)), err: lerr}
	}
	return err
}

// boundError is a framer call stopped by the guard: errors.As finds the
// *guard.LimitError (or errors.Is guard.ErrStopped) behind its message.
type boundError struct {
	msg string
	err error
}

func (e *boundError) Error() string { return e.msg }
func (e *boundError) Unwrap() error { return e.err }

// Decode calls the script's decode with buf.
func (lf *LuaFramer) Decode(buf []byte) (msg []byte, n int, err error) {
	if len(buf) == 0 {
		return nil, 0, nil
	}
	err = lf.with(func(st *framerState) error {
		st.slot.Enter()
		msg, n, err = st.f.decode(st.L, buf)
		return st.limited("decode", err)
	})
	return msg, n, err
}

// Encode appends msg framed by the script's encode to dst.
func (lf *LuaFramer) Encode(dst, msg []byte) ([]byte, error) {
	var b []byte
	err := lf.with(func(st *framerState) (err error) {
		st.slot.Enter()
		b, err = st.f.encode(st.L, msg)
		return st.limited("encode", err)
	})
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// Finish calls the script's finish, if it has one, with bytes left at the end.
func (lf *LuaFramer) Finish(rest []byte) (msg []byte, err error) {
	err = lf.with(func(st *framerState) error {
		st.slot.Enter()
		msg, err = st.f.finish(st.L, rest)
		return st.limited("finish", err)
	})
	return msg, err
}

// String names the framer in session headers.
func (lf *LuaFramer) String() string { return "lua:" + lf.name }
