package proto

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct{ spec, name string }{
		{"raw", "raw"}, {"line", "line"}, {"LINE", "line"}, {"crlf", "crlf"},
		{"delim:,", "delim:,"}, {"delim:END", "delim:END"}, {`delim:\x03`, `delim:\x03`},
		{`delim:\r\n`, `delim:\r\n`}, {`delim:\xC0`, `delim:\xc0`}, {"delim:a:b", "delim:a:b"},
		{"len:u8", "len:u8"}, {"len:u16be", "len:u16be"}, {"len:u16le", "len:u16le"},
		{"len:u32be", "len:u32be"}, {"len:u32le", "len:u32le"}, {"len:varint", "len:varint"},
		{"len:U16BE", "len:u16be"}, {"fixed:1", "fixed:1"}, {"fixed:16", "fixed:16"},
		{"slip", "slip"}, {"cobs", "cobs"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			f, err := Parse(tt.spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := Name(f); got != tt.name {
				t.Fatalf("Name = %q, want %q", got, tt.name)
			}
			again, err := Parse(Name(f), nil)
			if err != nil || Name(again) != tt.name {
				t.Fatalf("Parse(Name) = %v, %v", again, err)
			}
			if IsRaw(f) != (tt.name == "raw") {
				t.Fatalf("IsRaw = %v", IsRaw(f))
			}
		})
	}
	if !IsRaw(nil) || Name(nil) != "raw" {
		t.Fatal("a nil framer is raw")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"len:u24", `bad framing "len:u24": unknown length prefix "u24"`},
		{"", `bad framing "": empty framing spec`},
		{"json", `bad framing "json": unknown framing "json"`},
		{"line:x", `bad framing "line:x": line takes no argument`},
		{"raw:", `raw takes no argument`},
		{"delim", `delim:SEP needs a separator`},
		{"delim:", `delim:SEP needs a separator`},
		{`delim:\q`, `bad framing "delim:\\q": separator: unknown escape "\\q" at position 1`},
		{`delim:ab\x4`, `separator: bad escape at position 3: \x needs two hex digits`},
		{"len", `len needs a prefix type (u8, u16be, u16le, u32be, u32le, varint)`},
		{"fixed:0", `fixed:N needs a positive size in bytes, got "0"`},
		{"fixed:-3", `got "-3"`},
		{"fixed:x", `got "x"`},
		{"fixed", `got ""`},
		{"lua:", `lua:FILE needs a script file`},
		{"lua:framer.lua", `bad framing "lua:framer.lua": lua framing is not available`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := Parse(tt.spec, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrBadSpec) {
				t.Errorf("%v is not ErrBadSpec", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
			if !strings.HasSuffix(err.Error(), "; valid forms: "+ValidForms) {
				t.Errorf("err = %v, want the valid forms", err)
			}
		})
	}
}

func TestParseLua(t *testing.T) {
	var kind, arg string
	load := func(k, a string) (Framer, error) {
		kind, arg = k, a
		if a == "missing.lua" {
			return nil, errors.New("open missing.lua: no such file or directory")
		}
		return mustParse(t, "cobs"), nil
	}
	f, err := Parse("lua:dir/my:framer.lua", load)
	if err != nil || kind != "lua" || arg != "dir/my:framer.lua" || Name(f) != "cobs" {
		t.Fatalf("Parse = %v, %v; load got %q %q", f, err, kind, arg)
	}
	_, err = Parse("lua:missing.lua", load)
	if err == nil || err.Error() != `framing "lua:missing.lua": open missing.lua: no such file or directory` {
		t.Fatalf("err = %v", err)
	}
	if _, err := Parse("line", func(string, string) (Framer, error) { panic("called") }); err != nil {
		t.Fatal(err)
	}
}

func TestNameCustom(t *testing.T) {
	var f Framer = struct{ Framer }{Raw}
	if Name(f) != "custom" || IsRaw(f) {
		t.Fatalf("Name = %q, IsRaw = %v", Name(f), IsRaw(f))
	}
}
