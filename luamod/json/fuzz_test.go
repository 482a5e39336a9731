package json_test

import (
	stdjson "encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/luamod/json"
)

// FuzzJSONDecode checks that Decode never panics, accepts exactly what
// encoding/json calls valid (apart from our depth and range limits), and
// that encoding what it decoded is stable.
func FuzzJSONDecode(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,2,{"b":null}],"c":"d"}`, `[]`, `{}`, `"\ud83d\ude00"`, `"\ud800x"`, `-0.5e-3`,
		`[1,`, `{"a" 1}`, `"\u00"`, "\"\xff\xfe\"", `[[[[[]]]]]`, `tru`, `1e400`, ` null `,
	} {
		f.Add([]byte(s))
	}
	L := lua.NewState()
	defer L.Close()
	json.Open(L)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := json.Decode(L, data)
		valid := stdjson.Valid(data)
		if err != nil {
			msg := err.Error()
			if valid && !strings.Contains(msg, "nesting deeper") && !strings.Contains(msg, "out of range") {
				t.Fatalf("Decode(%q) failed on valid JSON: %v", data, err)
			}
			return
		}
		if !valid {
			t.Fatalf("Decode(%q) accepted invalid JSON", data)
		}
		e1 := encode(t, L, v)
		e2 := encode(t, L, decode(t, L, e1))
		e3 := encode(t, L, decode(t, L, e2))
		if e2 != e3 {
			t.Fatalf("encoding not stable: %q then %q", e2, e3)
		}
		if utf8.Valid(data) && e1 != e2 {
			t.Fatalf("round trip of %q changed: %q then %q", data, e1, e2)
		}
	})
}

func encode(t *testing.T, L *lua.LState, v lua.LValue) string {
	b, err := json.Encode(L, v)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return string(b)
}

func decode(t *testing.T, L *lua.LState, s string) lua.LValue {
	v, err := json.Decode(L, []byte(s))
	if err != nil {
		t.Fatalf("Decode(%q): %v", s, err)
	}
	return v
}
