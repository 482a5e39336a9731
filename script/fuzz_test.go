package script

import (
	"bytes"
	"math"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/proto"
)

// FuzzLuaFramer feeds a Lua decode that returns arbitrary values (chosen by
// the fuzzer) to every caller of a framer: Decode itself, the datagram
// splitter and proto.Reader. Each must end with a message or an error —
// never a panic, a count outside the buffer, or a loop that does not end.
func FuzzLuaFramer(f *testing.F) {
	f.Add(uint8(1), "msg", 3.0, uint8(0), false, []byte("msg and more"))
	f.Add(uint8(1), "", 1.0, uint8(0), false, []byte("abc"))  // empty messages
	f.Add(uint8(0), "", 2.0, uint8(0), false, []byte("abcd")) // nil, 2: filler
	f.Add(uint8(0), "", 0.0, uint8(1), false, []byte("abcd")) // nil: need more
	f.Add(uint8(1), "m", 0.0, uint8(0), false, []byte("abc")) // 0 with a message
	f.Add(uint8(1), "m", 1.0, uint8(0), true, []byte("abc"))  // #buf + 1
	f.Add(uint8(1), "m", -1.0, uint8(0), true, []byte("abc")) // #buf - 1
	f.Add(uint8(1), "m", math.NaN(), uint8(0), false, []byte("abc"))
	f.Add(uint8(1), "m", math.Inf(-1), uint8(0), false, []byte("abc"))
	f.Add(uint8(1), "m", 1e300, uint8(0), false, []byte("abc"))
	f.Add(uint8(1), "m", 1.5, uint8(0), false, []byte("abc"))
	f.Add(uint8(2), "", 1.0, uint8(0), false, []byte("abc"))   // a number as the message
	f.Add(uint8(3), "", 1.0, uint8(2), false, []byte("abc"))   // a table, a string count
	f.Add(uint8(4), "x", 1.0, uint8(3), false, []byte("abc"))  // a boolean, a table count
	f.Add(uint8(5), "boom", 1.0, uint8(0), false, []byte("a")) // decode raises an error
	lf, err := NewFramer("fuzz.lua", []byte(`
		return {decode = function(buf)
		  if RAISE then error(RAISE) end
		  if REL then return M, #buf + N end
		  return M, N
		end}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, mkind uint8, s string, n float64, nkind uint8, rel bool, buf []byte) {
		st := lf.idle[len(lf.idle)-1] // sequential calls reuse this one state
		L := st.L
		var m, nv lua.LValue = lua.LNil, lua.LNumber(n)
		raise := lua.LValue(lua.LNil)
		switch mkind % 6 {
		case 1:
			m = lua.LString(s)
		case 2:
			m = lua.LNumber(n)
		case 3:
			m = L.NewTable()
		case 4:
			m = lua.LBool(len(s) > 0)
		case 5:
			raise = lua.LString(s)
		}
		switch nkind % 4 {
		case 1:
			nv = lua.LNil
		case 2:
			nv = lua.LString(s)
		case 3:
			nv = L.NewTable()
		}
		if rel && nv.Type() != lua.LTNumber {
			rel = false
		}
		L.SetGlobal("M", m)
		L.SetGlobal("N", nv)
		L.SetGlobal("REL", lua.LBool(rel))
		L.SetGlobal("RAISE", raise)

		msg, used, err := lf.Decode(buf)
		switch {
		case err != nil:
			if msg != nil || used != 0 {
				t.Fatalf("error %v with a message %q, count %d", err, msg, used)
			}
		case used < 0 || used > len(buf):
			t.Fatalf("count %d of %d bytes", used, len(buf))
		case used == 0 && msg != nil:
			t.Fatalf("message %q with count 0", msg)
		}

		// The datagram path loops while decode uses bytes: it must stop.
		msgs, _ := st.f.split(L, append([]byte(nil), buf...))
		if len(msgs) > len(buf)+1 {
			t.Fatalf("%d messages from %d bytes", len(msgs), len(buf))
		}

		// A reader ends (io.EOF or an error) after at most one message per byte.
		r := proto.NewReader(bytes.NewReader(buf), lf, 1<<10)
		for i := 0; ; i++ {
			if _, err := r.Next(); err != nil {
				break
			}
			if i > len(buf) {
				t.Fatalf("reader gave %d messages from %d bytes", i+1, len(buf))
			}
		}
	})
}
