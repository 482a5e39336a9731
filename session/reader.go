package session

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
)

// maxLine is MaxLine; tests lower it.
var maxLine = MaxLine

// Record is one event read back from a session file.
type Record struct {
	Line      int // line number in the file, from 1 (the header)
	Kind      event.Kind
	T         time.Duration // offset from Header.Start
	Conn      uint64
	From      event.Side // Data: the sender; Close: the side that closed (0: not recorded)
	Data      []byte     // Data: the payload, owned by the Record
	Wire      []byte     // Data: the bytes on the wire when recorded (v2) and not the framed payload; see WireBytes
	Unframed  string     // Data: why Data is a chunk of wire bytes that made no message (v2); "" for a message
	Transport string     // Open: tcp, udp, tls, unix, unixgram
	Role      event.Side // Open: the side wirecat played
	Local     string     // Open: wirecat's address as recorded
	Remote    string     // Open: the peer's address as recorded
	Client    string     // Open: the client's address
	Server    string     // Open: the server's address
	Err       string     // Close and Error: what went wrong, if anything
	Code      int        // Close: the close frame's code (WebSocket), 0: none
	Reason    string     // Close: the close frame's reason
}

// Event converts r to an event timed from start (normally Header.Start).
// Open fields (transport, addresses, role) are only on the Open record: a
// caller that needs them on every event keeps them per connection.
func (r *Record) Event(start time.Time) *event.Event {
	e := &event.Event{
		Kind: r.Kind, Time: start.Add(r.T), Conn: r.Conn, Transport: r.Transport,
		Local: r.Local, Remote: r.Remote, Role: r.Role, From: r.From, Data: r.Data, Wire: r.Wire,
		Code: r.Code, Reason: r.Reason,
	}
	if r.Err != "" {
		e.Err = errors.New(r.Err)
	}
	if r.Unframed != "" {
		e.Unframed = errors.New(r.Unframed)
	}
	return e
}

// WireBytes returns the bytes that crossed the wire for a data record: the
// recorded wire bytes, the chunk itself when it made no message, else the
// payload framed with f (Reader.Framer: the header's framing; nil: raw).
func (r *Record) WireBytes(f proto.Framer) []byte {
	switch {
	case r.Wire != nil:
		return r.Wire
	case r.Unframed != "" || f == nil:
		return r.Data
	}
	b, err := f.Encode(nil, r.Data)
	if err != nil {
		return r.Data
	}
	return b
}

// Reader streams the records of a session file in constant memory.
type Reader struct {
	name   string
	br     *bufio.Reader
	closer io.Closer
	line   int
	off    int64 // bytes of the file read into lines so far
	recOff int64 // offset of the line readLine returned last
	file   *os.File
	buf    []byte // the current line when it spans bufio's buffer
	hdr    Header
	err    error               // sticky: damage, or io.EOF
	opens  map[uint64]openInfo // NextEvent: what open connections' open records said
	order  []uint64            // NextEvent: the ids in opens, oldest first (a ring)
	oldest int                 // NextEvent: index of the oldest id in order
	framer proto.Framer
	// Note, when set, is told once about a bound hit (more connections open
	// at once than MaxOpen), in a sentence naming the file and line.
	Note func(string)
	// MaxOpen bounds the connections whose open records NextEvent keeps;
	// 0 means DefaultMaxOpen.
	MaxOpen int
	noted   bool
}

// openInfo is what NextEvent keeps of an open record.
type openInfo struct {
	transport, local, remote string
	role                     event.Side
}

// DefaultMaxOpen is how many open connections NextEvent remembers at once:
// a file with more opens than closes (2 million) then costs no more
// memory than this many. Past it, the oldest connection's later events
// come without its transport and addresses.
const DefaultMaxOpen = 1 << 15

// Open opens the session file at path and reads its header.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer, r.file = f, f
	return r, nil
}

// OpenAt is Open, then goes on reading at byte off of the file, the start
// of line number line (an Offset a Reader of the same file returned), so a
// record can be read again without reading what comes before it.
func OpenAt(path string, off int64, line int) (*Reader, error) {
	r, err := Open(path)
	if err != nil {
		return nil, err
	}
	if _, err := r.file.Seek(off, io.SeekStart); err != nil {
		r.Close()
		return nil, err
	}
	r.br.Reset(r.file)
	r.off, r.line = off, line-1
	return r, nil
}

// Offset returns where the record Next returned last starts: its byte
// offset in the file and its line number, for OpenAt.
func (r *Reader) Offset() (off int64, line int) { return r.recOff, r.line }

// NewReader reads a session from rd and its header; name (usually the file
// name) prefixes every error.
func NewReader(rd io.Reader, name string) (*Reader, error) {
	r := &Reader{name: name, br: bufio.NewReaderSize(rd, 256<<10)}
	line, err := r.readLine()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: %w (the file is empty)", name, ErrNotSession)
	}
	if err != nil && !errors.Is(err, ErrTruncated) {
		return nil, err
	}
	var h struct {
		Wirecat *string
		Version json.Number
		Command string
		Frame   string
		Start   string
		Host    string
		Writer  string
	}
	if json.Unmarshal(line, &h) != nil || h.Wirecat == nil || *h.Wirecat != "session" {
		return nil, fmt.Errorf("%s: %w (first line is not a session header)", name, ErrNotSession)
	}
	v, verr := strconv.Atoi(h.Version.String())
	if verr != nil || v < 1 {
		return nil, &sentinelError{fmt.Sprintf("%s: session version %q is not a positive whole number", name, h.Version.String()), ErrVersion}
	}
	if v > Version {
		return nil, &sentinelError{fmt.Sprintf("session file %s is version %d; this wirecat reads version %d — upgrade wirecat",
			name, v, Version), ErrVersion}
	}
	r.hdr = Header{Version: v, Command: h.Command, Frame: h.Frame, Host: h.Host, Writer: h.Writer}
	r.framer = builtinFramer(h.Frame)
	if h.Start != "" {
		t, err := time.Parse(time.RFC3339Nano, h.Start)
		if err != nil {
			return nil, r.lineErr(fmt.Errorf("header start %q is not an RFC 3339 time", h.Start))
		}
		r.hdr.Start = t
	}
	return r, nil
}

// Header is the session's header line.
func (r *Reader) Header() Header { return r.hdr }

// RecordedWire returns the wire bytes of a data record when the file alone
// says what they are: recorded ones, an unframed chunk, or (version 2 with a
// framing defined by a script, which records every difference) the payload.
// nil means they are the payload framed with the header's framing, which a
// caller that can build it (a lua:FILE one too) applies.
func (r *Reader) RecordedWire(rec *Record) []byte {
	switch {
	case rec.Wire != nil:
		return rec.Wire
	case rec.Unframed != "":
		return rec.Data
	case r.hdr.Version >= 2 && r.framer == nil && r.hdr.Frame != "" && r.hdr.Frame != "raw":
		return rec.Data
	}
	return nil
}

// Framer is the header's framing when wirecat builds it without a script
// (nil for raw and lua:FILE), for Record.WireBytes.
func (r *Reader) Framer() proto.Framer { return r.framer }

// Name is the name errors carry.
func (r *Reader) Name() string { return r.name }

// Close closes the file Open opened.
func (r *Reader) Close() error {
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

func (r *Reader) lineErr(err error) error { return &LineError{File: r.name, Line: r.line, Err: err} }

// readLine returns the next line without its newline. The slice is valid
// until the next call. A last line without a newline comes with
// ErrTruncated wrapped in a LineError; the caller decides if it is whole.
func (r *Reader) readLine() ([]byte, error) {
	r.line++
	r.buf = r.buf[:0]
	r.recOff = r.off
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.off += int64(len(chunk))
		if len(r.buf)+len(chunk) > maxLine+1 {
			return nil, r.lineErr(fmt.Errorf("line longer than %d MiB", maxLine>>20))
		}
		if err == nil {
			if len(r.buf) == 0 {
				return chunk[:len(chunk)-1], nil
			}
			r.buf = append(r.buf, chunk[:len(chunk)-1]...)
			return r.buf, nil
		}
		r.buf = append(r.buf, chunk...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(r.buf) == 0:
			return nil, io.EOF
		case err == io.EOF:
			return r.buf, r.lineErr(ErrTruncated)
		}
		return nil, fmt.Errorf("%s: line %d: %w", r.name, r.line, err)
	}
}

// sentinelError reads as msg and matches is with errors.Is.
type sentinelError struct {
	msg string
	is  error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.is }

// recLine is a record line as JSON has it; pointers tell absent from zero.
type recLine struct {
	T         seconds `json:"t"`
	Ev        string  `json:"ev"`
	Conn      *uint64 `json:"conn"`
	From      string  `json:"from"`
	By        string  `json:"by"`
	Text      *string `json:"text"`
	B64       *string `json:"b64"`
	Wire      *string `json:"wire"`
	WireB64   *string `json:"wire_b64"`
	Unframed  string  `json:"unframed"`
	Transport string  `json:"transport"`
	Role      string  `json:"role"`
	Local     string  `json:"local"`
	Remote    string  `json:"remote"`
	Client    string  `json:"client"`
	Server    string  `json:"server"`
	Error     string  `json:"error"`
	Code      int     `json:"code"`
	Reason    string  `json:"reason"`
}

// seconds is "t": a JSON number, kept as its text (json.Number alone would
// also take a string holding a number).
type seconds string

func (s *seconds) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return &typeError{"t", kindOf(b), "a number of seconds"}
	}
	*s = seconds(b)
	return nil
}

// typeError is a field of the wrong JSON type.
type typeError struct{ field, got, want string }

func (e *typeError) Error() string { return fmt.Sprintf("%q is %s, want %s", e.field, e.got, e.want) }

// kindOf names the JSON type of a value by its first byte.
func kindOf(b []byte) string {
	switch {
	case len(b) == 0:
		return "empty"
	case b[0] == '"':
		return "a string"
	case b[0] == '{':
		return "an object"
	case b[0] == '[':
		return "an array"
	case b[0] == 't' || b[0] == 'f':
		return "a boolean"
	case b[0] == 'n':
		return "null"
	}
	return "a number"
}

// jsonTypeError turns what encoding/json says about a field of the wrong
// type into a sentence with the field's name, or nil for other errors.
func jsonTypeError(err error) error {
	var te *typeError
	if errors.As(err, &te) {
		return te
	}
	var ue *json.UnmarshalTypeError
	if !errors.As(err, &ue) {
		return nil
	}
	want := "a string"
	switch ue.Type.Kind() {
	case reflect.Uint64, reflect.Int, reflect.Int64, reflect.Float64:
		want = "a whole number"
	}
	got := ue.Value
	switch got {
	case "string", "number", "object", "array":
		got = "an " + got
		if got[3] != 'o' && got[3] != 'a' {
			got = "a " + ue.Value
		}
	case "bool":
		got = "a boolean"
	}
	if strings.HasPrefix(got, "number ") { // "number -1", "number 1.5"
		got = "the number " + strings.TrimPrefix(got, "number ")
	}
	return &typeError{ue.Field, got, want}
}

// Next returns the next record, io.EOF after the last one, or a *LineError
// naming the damaged line; every record before the damage has been
// returned. Records of a kind this version does not know are skipped.
func (r *Reader) Next() (Record, error) {
	for r.err == nil {
		line, err := r.readLine()
		truncated := errors.Is(err, ErrTruncated)
		if err != nil && !truncated {
			r.err = err
			break
		}
		if len(bytes.TrimSpace(line)) == 0 {
			if truncated {
				r.err = io.EOF
			}
			continue
		}
		var w recLine
		if jerr := json.Unmarshal(line, &w); jerr != nil {
			switch te := jsonTypeError(jerr); {
			case te != nil:
				r.err = r.lineErr(te)
			case truncated:
				r.err = err
			default:
				r.err = r.lineErr(fmt.Errorf("invalid JSON: %w", jerr))
			}
			break
		}
		if truncated {
			r.err = io.EOF // a whole last line that only lacks its newline
		}
		rec, known, err := r.record(&w)
		if err != nil {
			r.err = r.lineErr(err)
			break
		}
		if known {
			return rec, nil
		}
	}
	return Record{}, r.err
}

// NextEvent is Next as an *event.Event timed from the header's start, with
// the connection's transport, addresses and role (from its open record)
// filled in on every event, as live events have them.
func (r *Reader) NextEvent() (*event.Event, error) {
	rec, err := r.Next()
	if err != nil {
		return nil, err
	}
	if r.opens == nil {
		r.opens = map[uint64]openInfo{}
	}
	switch rec.Kind {
	case event.Open:
		r.remember(&rec)
	case event.Data, event.Close, event.Error:
		if o, ok := r.opens[rec.Conn]; ok {
			rec.Transport, rec.Role, rec.Local, rec.Remote = o.transport, o.role, o.local, o.remote
			if rec.Kind == event.Close {
				delete(r.opens, rec.Conn)
			}
		}
	}
	return rec.Event(r.hdr.Start), nil
}

// remember keeps the open record of a connection for its later events, in
// a table of at most MaxOpen: past it the oldest still open is forgotten,
// and Note is told once.
func (r *Reader) remember(rec *Record) {
	limit := r.MaxOpen
	if limit <= 0 {
		limit = DefaultMaxOpen
	}
	o := openInfo{transport: rec.Transport, local: rec.Local, remote: rec.Remote, role: rec.Role}
	if _, ok := r.opens[rec.Conn]; ok {
		r.opens[rec.Conn] = o // an id used again: its ring slot stays
		return
	}
	for len(r.opens) >= limit {
		// Ids closed meanwhile are still in the ring: skip them.
		id := r.order[r.oldest]
		r.oldest = (r.oldest + 1) % len(r.order)
		if _, ok := r.opens[id]; !ok {
			continue
		}
		delete(r.opens, id)
		if !r.noted && r.Note != nil {
			r.noted = true
			r.Note(fmt.Sprintf("%s:%d: more than %d connections open at once; the oldest ones' later events are shown without their addresses",
				r.name, r.line, limit))
		}
	}
	r.opens[rec.Conn] = o
	r.order = append(r.order, rec.Conn)
	if len(r.order) > 2*limit {
		// Compact the ring down to the ids still open, oldest first.
		kept := r.order[:0:0]
		for i := range r.order {
			id := r.order[(r.oldest+i)%len(r.order)]
			if _, ok := r.opens[id]; ok {
				kept = append(kept, id)
			}
		}
		r.order, r.oldest = kept, 0
	}
}

func (r *Reader) record(w *recLine) (rec Record, known bool, err error) {
	rec.Line = r.line
	switch w.Ev {
	case "open":
		rec.Kind = event.Open
	case "data":
		rec.Kind = event.Data
	case "close":
		rec.Kind = event.Close
	case "error":
		rec.Kind = event.Error
	case "":
		return rec, false, errors.New(`record has no "ev"`)
	default:
		return rec, false, nil // a newer kind: skip it
	}
	if w.T == "" {
		return rec, false, fmt.Errorf(`%s record has no "t"`, w.Ev)
	}
	if rec.T, err = parseSeconds(string(w.T)); err != nil {
		return rec, false, err
	}
	if w.Conn == nil {
		return rec, false, fmt.Errorf(`%s record has no "conn"`, w.Ev)
	}
	rec.Conn = *w.Conn
	rec.Err = w.Error
	switch rec.Kind {
	case event.Open:
		rec.Transport, rec.Local, rec.Remote, rec.Client, rec.Server = w.Transport, w.Local, w.Remote, w.Client, w.Server
		if w.Role != "" {
			if rec.Role, err = parseSide(w.Role); err != nil {
				return rec, false, fmt.Errorf("role: %w", err)
			}
		}
		if rec.Client == "" && rec.Server == "" {
			rec.Client, rec.Server = Endpoints(rec.Role, rec.Local, rec.Remote)
		}
	case event.Data:
		if w.From == "" {
			return rec, false, errors.New(`data record has no "from"`)
		}
		if rec.From, err = parseSide(w.From); err != nil || rec.From == event.Relay {
			return rec, false, fmt.Errorf(`"from" is %q, want client or server`, w.From)
		}
		switch {
		case w.Text != nil && w.B64 != nil:
			return rec, false, errors.New(`data record has both "text" and "b64"`)
		case w.Text != nil:
			rec.Data = []byte(*w.Text)
		case w.B64 != nil:
			if rec.Data, err = base64.StdEncoding.DecodeString(*w.B64); err != nil {
				return rec, false, fmt.Errorf("b64: %w", err)
			}
		default:
			return rec, false, errors.New(`data record has neither "text" nor "b64"`)
		}
		if rec.Data == nil {
			rec.Data = []byte{}
		}
		switch {
		case w.Wire != nil && w.WireB64 != nil:
			return rec, false, errors.New(`data record has both "wire" and "wire_b64"`)
		case w.Wire != nil:
			rec.Wire = []byte(*w.Wire)
		case w.WireB64 != nil:
			if rec.Wire, err = base64.StdEncoding.DecodeString(*w.WireB64); err != nil {
				return rec, false, fmt.Errorf("wire_b64: %w", err)
			}
		}
		if rec.Wire != nil && len(rec.Wire) == 0 {
			rec.Wire = []byte{}
		}
		rec.Unframed = w.Unframed
	case event.Close:
		if w.By != "" {
			if rec.From, err = parseSide(w.By); err != nil {
				return rec, false, fmt.Errorf("by: %w", err)
			}
		}
		rec.Code, rec.Reason = w.Code, w.Reason
	}
	return rec, true, nil
}

// parseSeconds reads decimal seconds exactly to the nanosecond; numbers in
// exponent form (as jq may print them) go through float64.
func parseSeconds(s string) (time.Duration, error) {
	bad := fmt.Errorf(`"t" is %s, want seconds`, s)
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Abs(f) > math.MaxInt64/1e9 {
			return 0, bad
		}
		return time.Duration(math.Round(f * 1e9)), nil
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || sec > math.MaxInt64/int64(time.Second)-1 {
		return 0, bad
	}
	d := time.Duration(sec) * time.Second
	for i := range 9 {
		digit := 0
		if i < len(frac) {
			if frac[i] < '0' || frac[i] > '9' {
				return 0, bad
			}
			digit = int(frac[i] - '0')
		}
		d += time.Duration(digit) * pow10[8-i]
	}
	if neg {
		d = -d
	}
	return d, nil
}

var pow10 = [9]time.Duration{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}
