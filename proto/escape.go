package proto

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Unescape reads the escapes users type in message arguments and framing
// specs: \n \r \t \0 \\ and \xHH. Any other backslash sequence is an error
// naming its position (1-based, in bytes), so a typo is not sent as is.
func Unescape(s string) ([]byte, error) {
	if strings.IndexByte(s, '\\') < 0 {
		return []byte(s), nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 == len(s) {
			return nil, fmt.Errorf("lone backslash at position %d (write \\\\ for a backslash)", i+1)
		}
		switch e := s[i+1]; e {
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case '0':
			out = append(out, 0)
		case '\\':
			out = append(out, '\\')
		case 'x':
			if i+3 >= len(s) || !isHex(s[i+2]) || !isHex(s[i+3]) {
				return nil, fmt.Errorf("bad escape at position %d: \\x needs two hex digits", i+1)
			}
			out = append(out, unhex(s[i+2])<<4|unhex(s[i+3]))
			i += 2
		default:
			return nil, fmt.Errorf("unknown escape %q at position %d (valid: \\n \\r \\t \\0 \\\\ \\xHH)", s[i:i+2], i+1)
		}
		i++
	}
	return out, nil
}

// Escape is the inverse of Unescape: printable ASCII stays as is, everything
// else becomes an escape, so the result reads back to the same bytes.
func Escape(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		switch {
		case c == '\\':
			sb.WriteString(`\\`)
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\r':
			sb.WriteString(`\r`)
		case c == '\t':
			sb.WriteString(`\t`)
		case c == 0:
			sb.WriteString(`\0`)
		case c >= 0x20 && c < 0x7f:
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, `\x%02x`, c)
		}
	}
	return sb.String()
}

// ParseHex reads bytes written in hex: "01 02 ff", "0102ff", "0x01 0x02",
// "01:02:ff". Whitespace, colons and commas separate groups; each group is an
// even number of digits, optionally prefixed by 0x.
func ParseHex(s string) ([]byte, error) {
	out := make([]byte, 0, len(s)/2)
	for i := 0; i < len(s); {
		c := s[i]
		if isHexSep(c) {
			i++
			continue
		}
		start := i
		if c == '0' && i+1 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') {
			i += 2
		}
		digits := i
		for i < len(s) && !isHexSep(s[i]) {
			if !isHex(s[i]) {
				r, _ := utf8.DecodeRuneInString(s[i:])
				return nil, fmt.Errorf("bad hex character %q at position %d", r, i+1)
			}
			i++
		}
		group := s[digits:i]
		if len(group) == 0 {
			return nil, fmt.Errorf("no hex digits after 0x at position %d", start+1)
		}
		if len(group)%2 != 0 {
			return nil, fmt.Errorf("odd number of hex digits in %q at position %d (write each byte as two digits)", s[start:i], start+1)
		}
		for j := 0; j < len(group); j += 2 {
			out = append(out, unhex(group[j])<<4|unhex(group[j+1]))
		}
	}
	return out, nil
}

func isHexSep(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':' || c == ','
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
