package json_test

import (
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/internal/luatest"
	"github.com/wirecat-dev/wirecat/luamod/json"
)

func newState(t testing.TB) *lua.LState {
	L := lua.NewState()
	json.Open(L)
	t.Cleanup(L.Close)
	return L
}

func TestLua(t *testing.T) {
	luatest.Run(t, newState(t), "testdata/json_test.lua")
}

func TestGoRoundTrip(t *testing.T) {
	L := newState(t)
	tests := []struct{ in, want string }{
		{`{"b":1,"a":[true,false,null]}`, `{"a":[true,false,null],"b":1}`},
		{` [ 1 , 2 ] `, `[1,2]`},
		{`"\u00e9\n"`, `"é\n"`},
		{`123456789012`, `123456789012`},
		{`-0`, `-0`},
		{`1E2`, `100`},
		{`0.000001`, `0.000001`},
		{`1e-7`, `1e-7`},
		{`1.5e300`, `1.5e+300`},
		{`-2.5E-10`, `-2.5e-10`},
		{`9007199254740993`, `9007199254740992`}, // beyond 2^53: float64 rounds
		{`{"":""}`, `{"":""}`},
		{`"\ud83d\ude00"`, "\"\U0001F600\""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := json.Decode(L, []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Encode(L, v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	L := newState(t)
	tests := []struct{ in, want string }{
		{`{"a":x}`, "json.decode: invalid character 'x' looking for beginning of value at offset 5"},
		{`[1,2`, "json.decode: unexpected end of input at offset 4"},
		{`nul`, "json.decode: unexpected end of input at offset 3"},
		{"\"\x01\"", `json.decode: invalid character '\x01' in string literal at offset 1`},
		{`[1 2]`, "json.decode: invalid character '2' after array element at offset 3"},
		{`+1`, "json.decode: invalid character '+' looking for beginning of value at offset 0"},
		{`"\u12"`, `json.decode: invalid character '"' in \u escape at offset 5`},
	}
	for _, tt := range tests {
		_, err := json.Decode(L, []byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Decode(%q) error = %v, want %s", tt.in, err, tt.want)
		}
	}
}

func TestNullAndMarkers(t *testing.T) {
	L := newState(t)
	v, err := json.Decode(L, []byte(`[null]`))
	if err != nil {
		t.Fatal(err)
	}
	if !json.IsNull(L, v.(*lua.LTable).RawGetInt(1)) {
		t.Error("null did not decode to json.null")
	}
	if L.GetGlobal("json").(*lua.LTable).RawGetString("null") != json.Null(L) {
		t.Error("json.null differs from json.Null(L)")
	}
	tb := L.NewTable()
	json.MarkArray(L, tb)
	if b, _ := json.Encode(L, tb); string(b) != "[]" {
		t.Errorf("marked empty table encoded as %s", b)
	}
}

func TestLoaderSharesNull(t *testing.T) {
	L := newState(t)
	L.PreloadModule("json", json.Loader)
	err := L.DoString(`local j = require("json")
assert(j.null == json.null)
assert(j.encode(j.decode("[null]")) == "[null]")
assert(json.encode(j.decode("[]")) == "[]")`)
	if err != nil {
		t.Fatal(err)
	}
}

func TestErrorPosition(t *testing.T) {
	L := newState(t)
	err := L.DoString("\n\njson.decode('{')")
	if err == nil || !strings.Contains(err.Error(), "<string>:3: json.decode: unexpected end of input at offset 1") {
		t.Errorf("error = %v", err)
	}
}

func BenchmarkEncode(b *testing.B) {
	L := newState(b)
	if err := L.DoString(`doc = {id = 7, name = "thermo-7", t = 21.5, h = 40, tags = {"a", "b"}, ok = true}`); err != nil {
		b.Fatal(err)
	}
	doc := L.GetGlobal("doc")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Encode(L, doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	L := newState(b)
	in := []byte(`{"id":7,"name":"thermo-7","t":21.5,"h":40,"tags":["a","b"],"ok":true}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := json.Decode(L, in); err != nil {
			b.Fatal(err)
		}
	}
}
