// Package proto cuts byte streams into messages and frames messages for the
// wire: the built-in framings, the --frame spec parser and escape handling.
package proto

// Framer cuts a byte stream into messages and encodes messages for the wire.
//
// A Framer holds no per-connection state: the caller owns the buffer, so one
// Framer serves every connection and a Lua-defined framer plugs in the same way.
// Implementations must be safe for concurrent use.
type Framer interface {
	// Decode returns the first complete message in buf and how many bytes of
	// buf it used. n == 0 means more bytes are needed. msg may alias buf.
	//
	// A nil msg with n > 0 means n bytes of filler were skipped without a
	// message (the empty frames of slip and cobs); an empty message is a
	// non-nil empty slice. Decoders may rewrite buf[:n] in place (slip and
	// cobs unescape there), so a caller must not decode the same bytes twice.
	Decode(buf []byte) (msg []byte, n int, err error)
	// Encode appends msg, framed, to dst.
	Encode(dst, msg []byte) ([]byte, error)
}

// Finisher is implemented by framers for which bytes left at end of stream
// still make a message (a last line without its newline). For other framers
// such a remainder is a truncated-message error.
type Finisher interface {
	Finish(rest []byte) (msg []byte, err error)
}

// resumer is implemented by the framers that search for a terminator. The
// Reader passes how many leading bytes of buf an earlier Decode already
// searched without success, so a long message arriving in small pieces is
// scanned once rather than once per piece.
type resumer interface {
	decodeFrom(buf []byte, from int) (msg []byte, n int, err error)
}

// sizer is implemented by framers that learn a message's size before it is
// complete, so the Reader can refuse an oversized one without buffering it.
// declared returns the payload size, or -1 while it is not known yet.
type sizer interface {
	declared(buf []byte) int64
}

// bounded is implemented by framers whose wire form of a message of up to
// max bytes is at most wireLimit(max) bytes.
type bounded interface {
	wireLimit(max int) int
}

// copyDecoder is implemented by the framers whose Decode rewrites buf in
// place (slip, cobs). decodeInto decodes into *dst (growing it as needed) instead and leaves buf as
// it was, so a Lossless Reader keeps the wire bytes of every message. On a
// malformed frame it returns the error with n = the frame's length, so the
// Reader can pass the frame on as it came and go on at the next one.
type copyDecoder interface {
	decodeInto(dst *[]byte, buf []byte, from int) (msg []byte, n int, err error)
}

// wireSizer is implemented by framers that know the length of a whole frame
// on the wire from its first bytes (a length prefix, a fixed size), so a
// Lossless Reader passes an oversized one through and resyncs right after
// it. wireSize returns -1 while the length is not known yet.
type wireSizer interface {
	wireSize(buf []byte) int64
}
