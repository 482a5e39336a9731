package guard

import lua "github.com/yuin/gopher-lua"

// NilResults readies a coroutine that waits in a call (coroutine.yield, or a
// Go function that yielded: sleep, net.connect, conn:recv...) to be resumed
// with that call's results. gopher-lua resumes it with exactly the values
// given and, unlike a return, does not adjust them to the count the calling
// code asked for: in `local c, err = net.connect(...)` resumed with just the
// connection, err's register is left a Go nil (not Lua's nil), and any use
// of it, even print(err), panics. So the waiting function's free registers,
// from the top of its stack (where the call's results land) to the end of
// its frame, are set to nil first: a result not given reads as nil, as
// after a return. Registers above the top are free (temporaries the code
// writes before it reads them). (Pop leaves lua.LNil behind it; SetTop
// would leave Go nils.) A coroutine not started yet has no frame: the VM
// adjusts its arguments itself.
func NilResults(th *lua.LState) {
	dbg, ok := th.GetStack(0)
	if !ok {
		return
	}
	fn, err := th.GetInfo("f", dbg, lua.LNil)
	f, ok := fn.(*lua.LFunction)
	if err != nil || !ok || f.IsG || f.Proto == nil {
		return
	}
	n := int(f.Proto.NumUsedRegisters) - th.GetTop()
	for i := 0; i < n; i++ {
		th.Push(lua.LNil)
	}
	th.Pop(n)
}

// fixResume makes coroutine.resume and the functions coroutine.wrap returns
// call NilResults before they resume: `local a, b = coroutine.yield()` in a
// script's own coroutine, resumed with one value, gets b = nil.
func fixResume(L *lua.LState) {
	co, ok := L.GetGlobal("coroutine").(*lua.LTable)
	if !ok {
		return
	}
	if resume := goFn(co.RawGetString("resume")); resume != nil {
		co.RawSetString("resume", L.NewFunction(func(L *lua.LState) int {
			if th, ok := L.Get(1).(*lua.LState); ok {
				NilResults(th)
			}
			return resume(L)
		}))
	}
	if wrap := goFn(co.RawGetString("wrap")); wrap != nil {
		co.RawSetString("wrap", L.NewFunction(func(L *lua.LState) int {
			wrap(L)
			// The original is a closure over the new thread, which reads it
			// as its upvalue 1: ours has the same upvalue, and calls it.
			w, ok := L.Get(-1).(*lua.LFunction)
			if !ok || !w.IsG || len(w.Upvalues) != 1 {
				return 1
			}
			thv := w.Upvalues[0].Value()
			L.Pop(1)
			L.Push(L.NewClosure(func(L *lua.LState) int {
				if th, ok := L.Get(lua.UpvalueIndex(1)).(*lua.LState); ok {
					NilResults(th)
				}
				return w.GFunction(L)
			}, thv))
			return 1
		}))
	}
}
