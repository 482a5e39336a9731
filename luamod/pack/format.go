package pack

import "fmt"

// kind is what one format option does.
type kind uint8

const (
	kInt      kind = iota // signed integer
	kUint                 // unsigned integer
	kFloat                // float32
	kDouble               // float64 (d and n)
	kChar                 // fixed-size string (c[n])
	kString               // length-prefixed string (s[n])
	kZstr                 // zero-terminated string
	kPadding              // one zero byte (x)
	kPadAlign             // align to the next option's size (X)
	kNop                  // space and header options
)

const (
	maxIntSize = 16 // Lua 5.3's MAXINTSIZE
	nativeSize = 8  // size of lua_Integer, size_t, long and the native max alignment
	// maxResult bounds sizes in a format and the packed result, like Lua's MAXSIZE.
	maxResult = 1<<31 - 1
)

// header is the state a format carries between options.
type header struct {
	little   bool
	maxAlign int
}

// formatError is a format problem. arg reports whether Lua 5.3 raises it as a
// "bad argument #1" error or as a plain error.
type formatError struct {
	msg string
	arg bool
}

func (e *formatError) Error() string { return e.msg }

func argErr(format string, a ...any) *formatError {
	return &formatError{msg: fmt.Sprintf(format, a...), arg: true}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// getNum reads an optional decimal number at fmt[i:], returning df when there is none.
func getNum(f string, i int, df int) (int, int) {
	if i >= len(f) || !isDigit(f[i]) {
		return df, i
	}
	a := 0
	for i < len(f) && isDigit(f[i]) && a <= (maxResult-9)/10 {
		a = a*10 + int(f[i]-'0')
		i++
	}
	return a, i
}

// getNumLimit reads an optional integer size and checks it is in [1, maxIntSize].
func getNumLimit(f string, i int, df int) (int, int, *formatError) {
	sz, i := getNum(f, i, df)
	if sz > maxIntSize || sz <= 0 {
		return 0, i, &formatError{msg: fmt.Sprintf("integral size (%d) out of limits [1,%d]", sz, maxIntSize)}
	}
	return sz, i, nil
}

// option reads one option at f[i:] and returns its kind, its size and the index after it.
func option(f string, i int, h *header) (kind, int, int, *formatError) {
	c := f[i]
	i++
	switch c {
	case 'b':
		return kInt, 1, i, nil
	case 'B':
		return kUint, 1, i, nil
	case 'h':
		return kInt, 2, i, nil
	case 'H':
		return kUint, 2, i, nil
	case 'l', 'j':
		return kInt, 8, i, nil
	case 'L', 'J', 'T':
		return kUint, 8, i, nil
	case 'f':
		return kFloat, 4, i, nil
	case 'd', 'n':
		return kDouble, 8, i, nil
	case 'i':
		sz, i, err := getNumLimit(f, i, 4)
		return kInt, sz, i, err
	case 'I':
		sz, i, err := getNumLimit(f, i, 4)
		return kUint, sz, i, err
	case 's':
		sz, i, err := getNumLimit(f, i, nativeSize)
		return kString, sz, i, err
	case 'c':
		sz, j := getNum(f, i, -1)
		if sz == -1 {
			return 0, 0, j, &formatError{msg: "missing size for format option 'c'"}
		}
		return kChar, sz, j, nil
	case 'z':
		return kZstr, 0, i, nil
	case 'x':
		return kPadding, 1, i, nil
	case 'X':
		return kPadAlign, 0, i, nil
	case ' ':
	case '<':
		h.little = true
	case '>':
		h.little = false
	case '=':
		h.little = nativeLittle
	case '!':
		sz, j, err := getNumLimit(f, i, nativeSize)
		h.maxAlign = sz
		return kNop, 0, j, err
	default:
		return 0, 0, i, &formatError{msg: fmt.Sprintf("invalid format option '%c'", c)}
	}
	return kNop, 0, i, nil
}

// details reads the option at f[i:] and also works out the padding needed
// before it, given the bytes written so far.
func details(f string, i int, h *header, total int) (k kind, size, pad, next int, err *formatError) {
	k, size, next, err = option(f, i, h)
	if err != nil {
		return
	}
	align := size
	if k == kPadAlign {
		if next >= len(f) {
			return k, 0, 0, next, argErr("invalid next option for option 'X'")
		}
		var nk kind
		nk, align, next, err = option(f, next, h)
		if err != nil {
			return
		}
		if nk == kChar || align == 0 {
			return k, 0, 0, next, argErr("invalid next option for option 'X'")
		}
	}
	if align <= 1 || k == kChar {
		return k, size, 0, next, nil
	}
	if align > h.maxAlign {
		align = h.maxAlign
	}
	if align&(align-1) != 0 {
		return k, size, 0, next, argErr("format asks for alignment not power of 2")
	}
	pad = (align - total&(align-1)) & (align - 1)
	return k, size, pad, next, nil
}
