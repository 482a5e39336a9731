package pack_test

import (
	"testing"
	"unicode"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/luamod/pack"
)

// longNumber reports whether f has a run of more than 4 digits: such sizes
// make pack allocate gigabytes, which is legal but not what fuzzing is for.
func longNumber(f string) bool {
	run := 0
	for _, r := range f {
		if unicode.IsDigit(r) {
			run++
			if run > 4 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// FuzzPackFormat feeds random formats to packsize, pack and unpack. Lua
// errors are fine; panics are not, and when pack and packsize both succeed
// they must agree, and unpack must read back exactly what pack wrote.
func FuzzPackFormat(f *testing.F) {
	for _, s := range []string{
		"<i4", ">I2 s1 z", "!4 b Xi4 d", "c10 x f n j J T", "=!8 b i16 h", "Xz", "s17", "!3i", "i0", "c",
		"<!2 b H I3 i5 l L", "  >  b ", "\x00", "XX", "!16 Xi16 b", "z z z", "s1s2s4s8",
	} {
		f.Add(s, []byte("\x01\x02\x03\x04\x05\x06\x07\x08abc\x00defghijklmnop"))
	}
	L := lua.NewState()
	defer L.Close()
	pack.Open(L)
	st := L.GetGlobal("string").(*lua.LTable)
	packFn, unpackFn, sizeFn := st.RawGetString("pack"), st.RawGetString("unpack"), st.RawGetString("packsize")
	f.Fuzz(func(t *testing.T, format string, data []byte) {
		if longNumber(format) {
			return
		}
		call := func(fn lua.LValue, args ...lua.LValue) ([]lua.LValue, error) {
			top := L.GetTop()
			defer L.SetTop(top)
			L.Push(fn)
			for _, a := range args {
				L.Push(a)
			}
			if err := L.PCall(len(args), lua.MultRet, nil); err != nil {
				return nil, err
			}
			var out []lua.LValue
			for i := top + 1; i <= L.GetTop(); i++ {
				out = append(out, L.Get(i))
			}
			return out, nil
		}
		fs := lua.LString(format)
		size, sizeErr := call(sizeFn, fs)
		call(unpackFn, fs, lua.LString(data)) // errors are fine, panics are not
		// "7" converts to a number, so it suits every option.
		args := []lua.LValue{fs}
		for range 40 {
			args = append(args, lua.LString("7"))
		}
		res, err := call(packFn, args...)
		if err != nil {
			return
		}
		packed := res[0].(lua.LString)
		if sizeErr == nil && int(size[0].(lua.LNumber)) != len(packed) {
			t.Fatalf("packsize(%q) = %v but pack gave %d bytes", format, size[0], len(packed))
		}
		got, err := call(unpackFn, fs, packed)
		if err != nil {
			t.Fatalf("unpack(%q, pack(...)) failed: %v", format, err)
		}
		if end := got[len(got)-1]; int(end.(lua.LNumber)) != len(packed)+1 {
			t.Fatalf("unpack(%q) ended at %v, want %d", format, end, len(packed)+1)
		}
	})
}
