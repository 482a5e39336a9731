// Package output renders events on stdout: the bytes as they arrived, one
// message per line, a human view, a hex dump, or JSON Lines.
package output

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fatih/color"

	"github.com/wirecat-dev/wirecat/event"
)

// Modes lists the -o values.
var Modes = []string{"raw", "lines", "text", "hex", "json"}

// Options shape what a Writer shows.
type Options struct {
	Mode     string // raw, lines, text, hex or json
	ShowSent bool   // also show what wirecat sent (relay shows both directions)
	Color    bool   // colour the text and hex views
	// View makes the output only a view of traffic that goes elsewhere (a
	// relay): Emit never waits for stdout, and what stdout cannot take is
	// dropped whole and counted (see Dropped) instead of holding up the
	// traffic.
	View bool
}

// Writer is an event.Sink that renders events on w. It buffers: call Flush
// before blocking on the network so nothing waits in the buffer.
//
// Over a *Drain (main's stdout), what a Writer flushes is written by the
// Drain's own goroutine; a View always goes through a Drain.
type Writer struct {
	mu      sync.Mutex
	w       *bufio.Writer // nil for a View, which writes whole events to drain
	drain   *Drain        // the Drain under w, or a View's
	own     bool          // drain was made here: Close waits for it
	opt     Options
	line    []byte
	hexBuf  bytes.Buffer
	pal     palette
	dropped struct{ slow, large Drops }
	// stalled: the last view did not fit in a queue that held something;
	// until the Drain writes again (its Writes moves past stalledWrites),
	// the next one will not fit either.
	stalled       bool
	stalledWrites int64
}

// New returns a Writer for opt.Mode; an unknown mode is an error.
func New(w io.Writer, opt Options) (*Writer, error) {
	switch opt.Mode {
	case "raw", "lines", "text", "hex", "json":
	default:
		return nil, fmt.Errorf("unknown output mode %q (want %s)", opt.Mode, strings.Join(Modes, ", "))
	}
	o := &Writer{opt: opt, pal: newPalette(opt.Color)}
	o.drain, _ = w.(*Drain)
	if opt.View && o.drain == nil {
		o.drain = NewDrain(w, 0)
		o.own = true
	}
	if !opt.View {
		// Lines gather here and reach a Drain a buffer at a time: one
		// lock and one copy per 64 KiB, not per message.
		o.w = bufio.NewWriterSize(w, 64<<10)
	}
	return o, nil
}

// Emit renders one event. A View drops the event when stdout cannot take
// it now; otherwise Emit waits for room, and fails once stdout failed or
// was abandoned (Drain.Abort).
func (o *Writer) Emit(e *event.Event) error {
	if e.Kind == event.Data && !e.Received() && !o.opt.ShowSent {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.opt.View && e.Kind == event.Data {
		// After a drop nothing fits until stdout takes some, and every
		// view of a message is at least as long as the message: drop it
		// before paying for the rendering (or even for the Drain's lock).
		if o.stalled && o.drain.Writes() == o.stalledWrites || !o.drain.Fits(len(e.Data)) {
			o.drop(e, len(e.Data))
			return nil
		}
	}
	var b []byte
	switch o.opt.Mode {
	case "raw":
		if e.Kind != event.Data {
			return nil
		}
		b = e.Data // no copy: a Drain copies, bufio passes large chunks straight through
	case "lines":
		if e.Kind != event.Data {
			return nil
		}
		b = append(append(o.line[:0], e.Data...), '\n')
	case "text":
		b = o.text(e)
	case "hex":
		b = o.hex(e)
	case "json":
		var err error
		if b, err = o.json(e); err != nil {
			return err
		}
	}
	if cap(b) <= 1<<20 && o.opt.Mode != "raw" {
		o.line = b[:0] // keep the buffer unless one huge message grew it
	}
	if o.opt.View {
		writes := o.drain.Writes()
		o.stalled = false
		if !o.drain.TryWrite(b) {
			// A view larger than the Drain's limit goes only into an
			// empty queue: its refusal says nothing of the next, smaller
			// one. Any other refusal means the queue is full.
			o.stalled = len(b) <= o.drain.Limit()
			o.stalledWrites = writes
			o.drop(e, len(b))
		}
		return nil
	}
	_, err := o.w.Write(b)
	return err
}

// lines is how many lines the view of e takes, without rendering it; in
// raw mode, where there are no lines of the view's own, a chunk counts as
// one.
func (o *Writer) lines(e *event.Event) int64 {
	if o.opt.Mode == "hex" && e.Kind == event.Data {
		return 1 + int64(len(e.Data)+15)/16
	}
	return 1
}

// drop counts e as dropped; size is the length of its view (or, before
// rendering, of its data, which the view is at least as long as).
func (o *Writer) drop(e *event.Event, size int) {
	d := &o.dropped.slow
	if size > o.drain.Limit() {
		d = &o.dropped.large
	}
	d.Events++
	d.Lines += o.lines(e)
}

// Drops counts what a View left out: events, and the lines of the view
// they would have taken (in raw mode: chunks, one per event).
type Drops struct{ Events, Lines int64 }

// Dropped is what a View left out in all: how many events, and how many
// lines they would have taken.
func (o *Writer) Dropped() (events, lines int64) {
	slow, large := o.DroppedBy()
	return slow.Events + large.Events, slow.Lines + large.Lines
}

// DroppedBy tells apart why a View left events out: slow, stdout was not
// keeping up (the queue was full); large, the event's view is larger than
// the queue and found it not yet empty (see LargeView).
func (o *Writer) DroppedBy() (slow, large Drops) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped.slow, o.dropped.large
}

// LargeView is the size past which a View shows a message only when
// stdout has written everything before it (the size of its queue).
func (o *Writer) LargeView() int {
	if o.drain == nil {
		return DefaultDrainLimit
	}
	return o.drain.Limit()
}

// Flush hands what is buffered to stdout. Over a Drain it does not wait
// for the write.
func (o *Writer) Flush() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var err error
	if o.w != nil {
		err = o.w.Flush()
	}
	if o.drain != nil {
		if derr := o.drain.Flush(); err == nil {
			err = derr
		}
	}
	return err
}

// Close flushes, and waits until a Drain made by New has written
// everything (or was aborted). A Drain passed to New belongs to the
// caller, who waits for it.
func (o *Writer) Close() error {
	err := o.Flush()
	if o.own {
		if cerr := o.drain.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func (o *Writer) prefix(e *event.Event) []byte {
	b := o.line[:0]
	b = append(b, o.pal.meta(e.Time.Format("15:04:05.000"))...)
	b = append(b, ' ')
	b = append(b, o.pal.meta("#"+strconv.FormatUint(e.Conn, 10)+" "+e.Remote)...)
	b = append(b, ' ')
	return b
}

// arrow shows the direction of a message: ← received, → sent; a relay
// names the sending side instead.
func arrow(e *event.Event) string {
	if e.Role == event.Relay {
		if e.From == event.Client {
			return "client→server"
		}
		return "server→client"
	}
	if e.Received() {
		return "←"
	}
	return "→"
}

func (o *Writer) text(e *event.Event) []byte {
	b := o.prefix(e)
	switch e.Kind {
	case event.Open:
		b = append(b, o.pal.open(fmt.Sprintf("open %s (%s)", e.Transport, describeRole(e.Role)))...)
	case event.Close:
		msg := "closed"
		if e.From != 0 {
			msg += " by " + closer(e)
		}
		if e.Code != 0 {
			msg += fmt.Sprintf(" with code %d", e.Code)
			if e.Reason != "" {
				msg += fmt.Sprintf(" %q", e.Reason)
			}
		}
		if e.Err != nil {
			msg += ": " + e.Err.Error()
		}
		b = append(b, o.pal.open(msg)...)
	case event.Error:
		b = append(b, o.pal.err("error: "+errText(e.Err))...)
	case event.Data:
		if e.Received() {
			b = append(b, o.pal.in(arrow(e))...)
		} else {
			b = append(b, o.pal.out(arrow(e))...)
		}
		b = append(b, ' ')
		b = AppendEscaped(b, e.Data)
	}
	return append(b, '\n')
}

func (o *Writer) hex(e *event.Event) []byte {
	if e.Kind != event.Data {
		return o.text(e)
	}
	b := o.prefix(e)
	if e.Received() {
		b = append(b, o.pal.in(arrow(e))...)
	} else {
		b = append(b, o.pal.out(arrow(e))...)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(e.Data)), 10)
	b = append(b, " bytes\n"...)
	o.hexBuf.Reset()
	d := hex.Dumper(&o.hexBuf)
	d.Write(e.Data)
	d.Close()
	return append(b, o.hexBuf.Bytes()...)
}

type jsonEvent struct {
	Time      string `json:"time"`
	Event     string `json:"event"`
	Conn      uint64 `json:"conn"`
	Transport string `json:"transport,omitempty"`
	Local     string `json:"local,omitempty"`
	Peer      string `json:"peer,omitempty"`
	Role      string `json:"role,omitempty"`
	Dir       string `json:"dir,omitempty"`
	From      string `json:"from,omitempty"`
	By        string `json:"by,omitempty"`
	Len       *int   `json:"len,omitempty"`
	Text      string `json:"text,omitempty"`
	B64       string `json:"b64,omitempty"`
	Code      int    `json:"code,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Error     string `json:"error,omitempty"`
}

func (o *Writer) json(e *event.Event) ([]byte, error) {
	j := jsonEvent{
		Time:  e.Time.UTC().Format(time.RFC3339Nano),
		Event: e.Kind.String(),
		Conn:  e.Conn,
		Peer:  e.Remote,
	}
	switch e.Kind {
	case event.Open:
		j.Transport, j.Local, j.Role = e.Transport, e.Local, e.Role.String()
	case event.Data:
		j.From = e.From.String()
		switch {
		case e.Role == event.Relay && e.From == event.Client:
			j.Dir = "up" // client → server, as the relay's fault flags name it
		case e.Role == event.Relay:
			j.Dir = "down"
		case e.Received():
			j.Dir = "in"
		default:
			j.Dir = "out"
		}
		n := len(e.Data)
		j.Len = &n
		if Printable(e.Data) {
			j.Text = string(e.Data)
		} else {
			j.B64 = base64.StdEncoding.EncodeToString(e.Data)
		}
	case event.Close:
		if e.From != 0 {
			j.By = e.From.String()
		}
		j.Code, j.Reason = e.Code, e.Reason
	}
	if e.Err != nil {
		j.Error = e.Err.Error()
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	return append(append(o.line[:0], b...), '\n'), nil
}

func describeRole(r event.Side) string {
	switch r {
	case event.Client:
		return "wirecat is the client"
	case event.Server:
		return "wirecat is the server"
	}
	return "relayed"
}

func closer(e *event.Event) string {
	if e.Role != event.Relay && e.From == e.Role {
		return "wirecat"
	}
	if e.Role == event.Relay {
		return e.From.String()
	}
	return "peer"
}

func errText(err error) string {
	if err == nil {
		return "unknown"
	}
	return err.Error()
}

// Printable reports whether b reads as text: valid UTF-8 with no control
// characters but tab, newline and carriage return (C0, DEL and C1 are
// controls, as in the session format, so both choose text or b64 alike).
func Printable(b []byte) bool {
	for len(b) > 0 {
		c := b[0]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
				return false
			}
			b = b[1:]
			continue
		}
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 || isC1(r) {
			return false
		}
		b = b[n:]
	}
	return true
}

// AppendEscaped appends p with non-printable bytes escaped as \n, \r, \t,
// \0, \\ or \xHH, so a message always stays on one line.
func AppendEscaped(b, p []byte) []byte {
	const hexdig = "0123456789abcdef"
	for len(p) > 0 {
		c := p[0]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(p)
			if (r != utf8.RuneError || n > 1) && !isC1(r) {
				b = append(b, p[:n]...)
				p = p[n:]
				continue
			}
		}
		switch {
		case c == '\n':
			b = append(b, `\n`...)
		case c == '\r':
			b = append(b, `\r`...)
		case c == '\t':
			b = append(b, `\t`...)
		case c == 0:
			b = append(b, `\0`...)
		case c == '\\':
			b = append(b, `\\`...)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'x', hexdig[c>>4], hexdig[c&15])
		default:
			b = append(b, c)
		}
		p = p[1:]
	}
	return b
}

// isC1 reports a C1 control (U+0080..U+009F): a terminal may act on one
// (U+009B starts a control sequence), so it is escaped like C0.
func isC1(r rune) bool { return r >= 0x80 && r <= 0x9f }

// palette colours the text view; without colour every function returns its input.
type palette struct {
	meta, in, out, open, err func(string) string
}

func newPalette(on bool) palette {
	if !on {
		id := func(s string) string { return s }
		return palette{id, id, id, id, id}
	}
	mk := func(attrs ...color.Attribute) func(string) string {
		c := color.New(attrs...)
		c.EnableColor() // the caller already decided; fatih/color must not second-guess it
		return func(s string) string { return c.Sprint(s) }
	}
	return palette{
		meta: mk(color.Faint),
		in:   mk(color.FgCyan, color.Bold),
		out:  mk(color.FgYellow, color.Bold),
		open: mk(color.FgGreen),
		err:  mk(color.FgRed, color.Bold),
	}
}
