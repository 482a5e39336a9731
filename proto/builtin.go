package proto

import (
	"bytes"
	"fmt"
	"strconv"
)

// rawFramer passes bytes through: whatever is buffered is one message.
type rawFramer struct{}

func (rawFramer) Decode(buf []byte) ([]byte, int, error) {
	if len(buf) == 0 {
		return nil, 0, nil
	}
	return buf, len(buf), nil
}

func (rawFramer) Encode(dst, msg []byte) ([]byte, error) { return append(dst, msg...), nil }
func (rawFramer) String() string                         { return "raw" }

// lineFramer splits on LF and drops a CR before it, so CRLF peers work too.
type lineFramer struct{}

func (l lineFramer) Decode(buf []byte) ([]byte, int, error) { return l.decodeFrom(buf, 0) }

func (lineFramer) decodeFrom(buf []byte, from int) ([]byte, int, error) {
	i := bytes.IndexByte(buf[from:], '\n')
	if i < 0 {
		return nil, 0, nil
	}
	i += from
	return trimCR(buf[:i]), i + 1, nil
}

func (lineFramer) Finish(rest []byte) ([]byte, error) { return trimCR(rest), nil }

func (lineFramer) Encode(dst, msg []byte) ([]byte, error) {
	return append(append(dst, msg...), '\n'), nil
}

func (lineFramer) String() string        { return "line" }
func (lineFramer) wireLimit(max int) int { return max + 2 }

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// crlfFramer splits on CRLF only; a lone LF is payload.
type crlfFramer struct{}

var crlf = []byte("\r\n")

func (c crlfFramer) Decode(buf []byte) ([]byte, int, error) { return c.decodeFrom(buf, 0) }

func (crlfFramer) decodeFrom(buf []byte, from int) ([]byte, int, error) {
	if from > 0 {
		from-- // the CR of a CRLF split across reads
	}
	i := bytes.Index(buf[from:], crlf)
	if i < 0 {
		return nil, 0, nil
	}
	i += from
	return buf[:i], i + 2, nil
}

// Finish drops a lone CR at the end: it is half a terminator, not payload.
func (crlfFramer) Finish(rest []byte) ([]byte, error) { return trimCR(rest), nil }

func (crlfFramer) Encode(dst, msg []byte) ([]byte, error) {
	return append(append(dst, msg...), '\r', '\n'), nil
}

func (crlfFramer) String() string        { return "crlf" }
func (crlfFramer) wireLimit(max int) int { return max + 2 }

// delimFramer splits on an arbitrary separator.
type delimFramer struct{ sep []byte }

func (d delimFramer) Decode(buf []byte) ([]byte, int, error) { return d.decodeFrom(buf, 0) }

func (d delimFramer) decodeFrom(buf []byte, from int) ([]byte, int, error) {
	var i int
	if len(d.sep) == 1 {
		i = bytes.IndexByte(buf[from:], d.sep[0])
	} else {
		// A separator may straddle the bytes already searched.
		from = max(0, from-len(d.sep)+1)
		i = bytes.Index(buf[from:], d.sep)
	}
	if i < 0 {
		return nil, 0, nil
	}
	i += from
	return buf[:i], i + len(d.sep), nil
}

func (delimFramer) Finish(rest []byte) ([]byte, error) { return rest, nil }

// Encode refuses a message that contains the separator: the peer would cut
// it in two, so what arrives would not be what was sent.
func (d delimFramer) Encode(dst, msg []byte) ([]byte, error) {
	if bytes.Contains(msg, d.sep) {
		return dst, fmt.Errorf("%q contains the delimiter %q: the peer would read it as more than one message", truncate(msg, 40), Escape(d.sep))
	}
	return append(append(dst, msg...), d.sep...), nil
}

func (d delimFramer) String() string        { return "delim:" + Escape(d.sep) }
func (d delimFramer) wireLimit(max int) int { return max + len(d.sep) }

// fixedFramer cuts the stream every size bytes.
type fixedFramer struct{ size int }

func (f fixedFramer) Decode(buf []byte) ([]byte, int, error) {
	if len(buf) < f.size {
		return nil, 0, nil
	}
	return buf[:f.size], f.size, nil
}

// Encode refuses a message of the wrong size rather than pad or cut it:
// either would put something on the wire the user did not write.
func (f fixedFramer) Encode(dst, msg []byte) ([]byte, error) {
	if len(msg) != f.size {
		return dst, fmt.Errorf("%s: message is %d bytes, want exactly %d", f, len(msg), f.size)
	}
	return append(dst, msg...), nil
}

func (f fixedFramer) String() string        { return "fixed:" + strconv.Itoa(f.size) }
func (f fixedFramer) declared([]byte) int64 { return int64(f.size) }
func (f fixedFramer) wireLimit(max int) int { return max }
func (f fixedFramer) wireSize([]byte) int64 { return int64(f.size) }

// truncate shortens b for an error message.
func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}
