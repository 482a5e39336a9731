package session

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
)

// Writer records events to a session file. It is an event.Sink.
//
// By default each event becomes one line handed to the kernel in a single
// write before Emit returns: nothing waits in a user-space buffer, so a
// kill -9 loses at most the event being written, and the file stays
// readable up to the last complete line. Batch trades a little of that for
// throughput on small messages.
type Writer struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer // the file Create opened; nil for NewWriter
	start  time.Time
	line   []byte
	err    error // sticky: the first write error, or errClosed
	enc    wireEncoder

	// Batch mode: Emit appends to pending; a goroutine writes it out.
	batch   bool // Data events wait in pending until Flush
	pending []byte
}

// maxPending bounds what Batch mode holds before Emit waits for the disk.
const maxPending = 1 << 20

var errClosed = errors.New("session writer closed")

// Create creates (or truncates) the file at path and writes h as its header.
func Create(path string, h Header) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	w, err := NewWriter(f, h)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("record %s: %w", path, err)
	}
	w.closer = f
	return w, nil
}

// NewWriter writes h as a header to w and returns a Writer that records to
// it. A zero h.Start means now.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if h.Start.IsZero() {
		h.Start = time.Now()
	}
	sw := &Writer{w: w, start: h.Start, line: make([]byte, 0, 512), enc: wireEncoder{f: builtinFramer(h.Frame)}}
	b := append(sw.line[:0], `{"wirecat":"session","version":`...)
	b = strconv.AppendInt(b, Version, 10)
	b = appendField(b, "command", h.Command)
	b = appendField(b, "frame", h.Frame)
	b = append(b, `,"start":`...)
	b = appendString(b, h.Start.Format(time.RFC3339Nano))
	b = appendField(b, "host", h.Host)
	b = appendField(b, "writer", h.Writer)
	b = append(b, "}\n"...)
	sw.line = b
	if _, err := w.Write(b); err != nil {
		return nil, fmt.Errorf("write session header: %w", err)
	}
	return sw, nil
}

// appendField appends ,"key":"value" unless value is empty.
func appendField(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

// Start is the time every event's offset counts from.
func (w *Writer) Start() time.Time { return w.start }

// Emit writes e as one line. A zero e.Time means now.
func (w *Writer) Emit(e *event.Event) error {
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.batch {
		if w.err != nil {
			return w.err
		}
		w.pending = w.enc.encode(w.pending, e, t.Sub(w.start))
		if e.Kind != event.Data || len(w.pending) >= maxPending {
			return w.writePending()
		}
		return nil
	}
	if w.err != nil {
		return w.err
	}
	b := w.enc.encode(w.line[:0], e, t.Sub(w.start))
	if cap(b) <= 1<<20 {
		w.line = b // keep the buffer unless one huge message grew it
	}
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("record: %w", err)
		return w.err
	}
	return nil
}

// wireEncoder writes event lines, with the wire bytes of a message only
// where a reader could not make them again by framing the payload.
type wireEncoder struct {
	f       proto.Framer // the header's framer, when proto builds it
	scratch []byte
}

// wireNeeded reports whether e's wire bytes must be recorded: they are
// known and differ from the payload framed with the header's framing.
func (x *wireEncoder) wireNeeded(e *event.Event) bool {
	if e.Wire == nil {
		return false
	}
	if x.f == nil {
		return !bytes.Equal(e.Wire, e.Data)
	}
	b, err := x.f.Encode(x.scratch[:0], e.Data)
	if cap(b) <= 1<<20 {
		x.scratch = b[:0]
	}
	return err != nil || !bytes.Equal(b, e.Wire)
}

// encode appends e as one line, t being its offset from the start.
func (x *wireEncoder) encode(b []byte, e *event.Event, t time.Duration) []byte {
	b = append(b, `{"t":`...)
	b = appendSeconds(b, t)
	b = append(b, `,"ev":"`...)
	b = append(b, e.Kind.String()...)
	b = append(b, `","conn":`...)
	b = strconv.AppendUint(b, e.Conn, 10)
	switch e.Kind {
	case event.Open:
		b = appendField(b, "transport", e.Transport)
		b = appendField(b, "role", sideName(e.Role))
		b = appendField(b, "local", e.Local)
		b = appendField(b, "remote", e.Remote)
		client, server := Endpoints(e.Role, e.Local, e.Remote)
		b = appendField(b, "client", client)
		b = appendField(b, "server", server)
	case event.Data:
		b = appendField(b, "from", sideName(e.From))
		b = appendBytes(b, "text", "b64", e.Data)
		switch {
		case e.Unframed != nil:
			b = appendField(b, "unframed", e.Unframed.Error())
		case x.wireNeeded(e):
			b = appendBytes(b, "wire", "wire_b64", e.Wire)
		}
	case event.Close:
		b = appendField(b, "by", sideName(e.From))
		if e.Code != 0 {
			b = append(append(b, `,"code":`...), strconv.Itoa(e.Code)...)
			b = appendField(b, "reason", e.Reason)
		}
		if e.Err != nil {
			b = appendField(b, "error", e.Err.Error())
		}
	default: // event.Error and anything newer
		msg := "unknown error"
		if e.Err != nil {
			msg = e.Err.Error()
		}
		b = appendField(b, "error", msg)
	}
	return append(b, '}', '\n')
}

// appendBytes appends p as ,"text":"..." when it is printable text, else
// as ,"b64":"..." (with the given keys).
func appendBytes(b []byte, text, b64 string, p []byte) []byte {
	n := len(b)
	b = append(append(append(b, ',', '"'), text...), '"', ':')
	var ok bool
	if b, ok = appendText(b, p); !ok {
		b = append(append(append(b[:n], ',', '"'), b64...), `":"`...)
		b = base64.StdEncoding.AppendEncode(b, p)
		b = append(b, '"')
	}
	return b
}

// Batch makes Emit keep Data events in memory until Flush, so a burst of
// messages cut from one read is written with one write(2). The producer
// flushes before it blocks on the network (pipe.Config.Flush), so a kill -9
// loses at most the burst in flight. Open, close and error events, and a
// burst past 1 MiB, are written at once.
func (w *Writer) Batch() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.batch = true
}

// writePending writes what Batch kept; w.mu is held.
func (w *Writer) writePending() error {
	if len(w.pending) == 0 || w.err != nil {
		return w.err
	}
	_, err := w.w.Write(w.pending)
	if cap(w.pending) > 2*maxPending {
		w.pending = nil // one huge message grew it: let it go
	}
	w.pending = w.pending[:0]
	if err != nil {
		w.err = fmt.Errorf("record: %w", err)
	}
	return w.err
}

// Flush writes every event emitted so far.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == errClosed {
		return nil
	}
	return w.writePending()
}

// Close writes what is pending, stops recording and closes the file Create
// opened. Later Emits fail.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == errClosed {
		return nil
	}
	werr := w.writePending()
	w.err = errClosed
	if w.closer != nil {
		if err := w.closer.Close(); err != nil && werr == nil {
			werr = fmt.Errorf("record: %w", err)
		}
	}
	return werr
}
