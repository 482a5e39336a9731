package proto

import (
	"bytes"
	"strings"
	"testing"
)

func TestUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""}, {"plain", "plain"}, {`a\nb`, "a\nb"}, {`\r\n`, "\r\n"}, {`\t`, "\t"},
		{`\0`, "\x00"}, {`\\`, `\`}, {`\\n`, `\n`}, {`\x03`, "\x03"}, {`\xfF\xC0`, "\xff\xc0"},
		{`GET / HTTP/1.0\r\n\r\n`, "GET / HTTP/1.0\r\n\r\n"}, {"é", "é"},
	}
	for _, tt := range tests {
		got, err := Unescape(tt.in)
		if err != nil || string(got) != tt.want {
			t.Errorf("Unescape(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if back, err := Unescape(Escape(got)); err != nil || !bytes.Equal(back, got) {
			t.Errorf("Unescape(Escape(%q)) = %q, %v", got, back, err)
		}
	}
	bad := []struct{ in, want string }{
		{`\q`, `unknown escape "\\q" at position 1 (valid: \n \r \t \0 \\ \xHH)`},
		{`ab\e`, `unknown escape "\\e" at position 3`},
		{`abc\`, `lone backslash at position 4`},
		{`\x`, `bad escape at position 1: \x needs two hex digits`},
		{`\x4`, `bad escape at position 1`},
		{`ok\x4g`, `bad escape at position 3`},
	}
	for _, tt := range bad {
		_, err := Unescape(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Unescape(%q) err = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestEscape(t *testing.T) {
	if got := Escape([]byte("a,b\\\n\r\t\x00\x03\xffé~")); got != `a,b\\\n\r\t\0\x03\xff\xc3\xa9~` {
		t.Fatalf("Escape = %s", got)
	}
}

func TestParseHex(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""}, {"  ", ""}, {"01 02 ff", "\x01\x02\xff"}, {"0102ff", "\x01\x02\xff"},
		{"0x01 0x02", "\x01\x02"}, {"0X0102", "\x01\x02"}, {"01:02:FF", "\x01\x02\xff"},
		{"01,02, 03\t04\r\n", "\x01\x02\x03\x04"}, {"de ad:be\tef", "\xde\xad\xbe\xef"},
	}
	for _, tt := range tests {
		got, err := ParseHex(tt.in)
		if err != nil || string(got) != tt.want {
			t.Errorf("ParseHex(%q) = %x, %v; want %x", tt.in, got, err, tt.want)
		}
	}
	bad := []struct{ in, want string }{
		{"1", `odd number of hex digits in "1" at position 1`},
		{"01 2 03", `odd number of hex digits in "2" at position 4`},
		{"0x1", `odd number of hex digits in "0x1"`},
		{"0x", `no hex digits after 0x at position 1`},
		{"01 zz", `bad hex character 'z' at position 4`},
		{"01é", `bad hex character 'é' at position 3`},
		{"01-02", `bad hex character '-' at position 3`},
	}
	for _, tt := range bad {
		_, err := ParseHex(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseHex(%q) err = %v, want %q", tt.in, err, tt.want)
		}
	}
}
