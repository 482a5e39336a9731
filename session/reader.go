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
	"strconv"
	"strings"
	"time"

	"github.com/wirecat-dev/wirecat/event"
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
	Transport string     // Open: tcp, udp, tls, unix, unixgram
	Role      event.Side // Open: the side wirecat played
	Local     string     // Open: wirecat's address as recorded
	Remote    string     // Open: the peer's address as recorded
	Client    string     // Open: the client's address
	Server    string     // Open: the server's address
	Err       string     // Close and Error: what went wrong, if anything
}

// Event converts r to an event timed from start (normally Header.Start).
// Open fields (transport, addresses, role) are only on the Open record: a
// caller that needs them on every event keeps them per connection.
func (r *Record) Event(start time.Time) *event.Event {
	e := &event.Event{
		Kind: r.Kind, Time: start.Add(r.T), Conn: r.Conn, Transport: r.Transport,
		Local: r.Local, Remote: r.Remote, Role: r.Role, From: r.From, Data: r.Data,
	}
	if r.Err != "" {
		e.Err = errors.New(r.Err)
	}
	return e
}

// Reader streams the records of a session file in constant memory.
type Reader struct {
	name   string
	br     *bufio.Reader
	closer io.Closer
	line   int
	buf    []byte // the current line when it spans bufio's buffer
	hdr    Header
	err    error              // sticky: damage, or io.EOF
	opens  map[uint64]*Record // NextEvent: open connections' open records
}

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
	r.closer = f
	return r, nil
}

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
	for {
		chunk, err := r.br.ReadSlice('\n')
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

// wire is a record line as JSON has it; pointers tell absent from zero.
type wire struct {
	T         json.Number
	Ev        string
	Conn      *uint64
	From      string
	By        string
	Text      *string
	B64       *string
	Transport string
	Role      string
	Local     string
	Remote    string
	Client    string
	Server    string
	Error     string
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
		var w wire
		if jerr := json.Unmarshal(line, &w); jerr != nil {
			if truncated {
				r.err = err
			} else {
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
		r.opens = map[uint64]*Record{}
	}
	switch rec.Kind {
	case event.Open:
		o := rec
		r.opens[rec.Conn] = &o
	case event.Data, event.Close, event.Error:
		if o := r.opens[rec.Conn]; o != nil {
			rec.Transport, rec.Role, rec.Local, rec.Remote = o.Transport, o.Role, o.Local, o.Remote
			if rec.Kind == event.Close {
				delete(r.opens, rec.Conn)
			}
		}
	}
	return rec.Event(r.hdr.Start), nil
}

func (r *Reader) record(w *wire) (rec Record, known bool, err error) {
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
	case event.Close:
		if w.By != "" {
			if rec.From, err = parseSide(w.By); err != nil {
				return rec, false, fmt.Errorf("by: %w", err)
			}
		}
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
