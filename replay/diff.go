package replay

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wirecat-dev/wirecat/event"
)

// Difference is the first message from the peer that is not what was
// recorded.
type Difference struct {
	Conn     uint64        // the recorded connection
	Index    int           // the message's number in the recorded connection, from 1
	From     event.Side    // the side that sent it
	Recorded time.Duration // when it was recorded, from the connection's open (-1: never)
	Arrived  time.Duration // when it arrived (or the wait ended), from the replayed connection's start
	Expected []byte        // what was recorded (nil: nothing)
	Got      []byte        // what arrived
	Offset   int           // the first byte that differs
	Problem  string        // why nothing (more) arrived, if that is the difference
	// WantClose and GotClose, when set, say the difference is the peer's
	// WebSocket close frame rather than a message: the recorded one
	// (`4000 (application) "bye"`) and what came instead.
	WantClose, GotClose string
}

func (d *Difference) Error() string {
	if d.WantClose != "" {
		return fmt.Sprintf("connection %d, the close from the %s differs from the recording", d.Conn, d.From)
	}
	s := fmt.Sprintf("connection %d, message %d from the %s differs from the recording", d.Conn, d.Index, d.From)
	if d.Problem != "" {
		s = fmt.Sprintf("connection %d, message %d from the %s: %s", d.Conn, d.Index, d.From, d.Problem)
	}
	return s
}

// Report is the difference as a readable diff: where, then what was
// expected and what arrived, as text when both are printable, else as a
// hex dump, around the first byte that differs.
func (d *Difference) Report() string {
	var b strings.Builder
	b.WriteString(d.Error())
	b.WriteString("\n")
	rec := "never"
	if d.Recorded >= 0 {
		rec = "at +" + seconds(d.Recorded)
	}
	fmt.Fprintf(&b, "  recorded %s, arrived at +%s (from the connection's start)", rec, seconds(d.Arrived))
	if d.WantClose != "" {
		fmt.Fprintf(&b, "\nexpected: close code %s\ngot: %s\n", d.WantClose, d.GotClose)
		return b.String()
	}
	if d.Expected != nil && d.Got != nil && d.Offset >= 0 {
		fmt.Fprintf(&b, "; first difference at byte %d", d.Offset)
	}
	b.WriteString("\n")
	hex := !printable(d.Expected) || !printable(d.Got)
	block := func(label string, data []byte, none string) {
		if data == nil {
			fmt.Fprintf(&b, "%s: %s\n", label, none)
			return
		}
		fmt.Fprintf(&b, "%s (%d bytes):\n", label, len(data))
		if hex {
			hexLines(&b, data, d.Offset)
		} else {
			textLines(&b, data, d.Offset)
		}
	}
	block("expected", d.Expected, "nothing (the connection closes)")
	got := "nothing"
	if d.Problem != "" {
		got = "nothing: " + d.Problem
	}
	block("got", d.Got, got)
	return b.String()
}

func seconds(d time.Duration) string { return d.Round(time.Microsecond).String() }

// firstDiff is the offset of the first byte where a and b differ, or -1
// when they are equal.
func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) == len(b) {
		return -1
	}
	return n
}

// printable is the session format's rule: valid UTF-8 with no control
// character but tab, line feed and carriage return.
func printable(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || (r >= 0x7f && r <= 0x9f) {
			return false
		}
		b = b[n:]
	}
	return true
}

// context lines shown around the first difference
const (
	before = 3
	after  = 8
)

// textLines writes data a line at a time, escaped so that line ends and
// tabs show, marking with > the line where the first difference is.
func textLines(b *strings.Builder, data []byte, off int) {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		b.WriteString("  | (empty)\n")
		return
	}
	at, n := len(lines)-1, 0
	for i, l := range lines {
		if off < n+len(l) {
			at = i
			break
		}
		n += len(l)
	}
	from, to := max(at-before, 0), min(at+after+1, len(lines))
	if from > 0 {
		fmt.Fprintf(b, "  | ... %d lines\n", from)
	}
	for i := from; i < to; i++ {
		mark := "|"
		if i == at && off >= 0 {
			mark = ">"
		}
		fmt.Fprintf(b, "  %s %s\n", mark, escape(lines[i]))
	}
	if to < len(lines) {
		fmt.Fprintf(b, "  | ... %d more lines\n", len(lines)-to)
	}
}

func escape(line []byte) string {
	r := strings.NewReplacer("\\", `\\`, "\r", `\r`, "\n", `\n`, "\t", `\t`)
	return r.Replace(string(line))
}

// hexLines writes a hexdump -C view of the rows around off.
func hexLines(b *strings.Builder, data []byte, off int) {
	rows := (len(data) + 15) / 16
	if rows == 0 {
		b.WriteString("  | (empty)\n")
		return
	}
	at := min(max(off, 0)/16, rows-1)
	from, to := max(at-before, 0), min(at+after+1, rows)
	if from > 0 {
		fmt.Fprintf(b, "  | ... %d bytes\n", from*16)
	}
	for r := from; r < to; r++ {
		row := data[r*16 : min(r*16+16, len(data))]
		mark := "|"
		if r == at && off >= 0 {
			mark = ">"
		}
		fmt.Fprintf(b, "  %s %08x ", mark, r*16)
		for i := range 16 {
			if i == 8 {
				b.WriteByte(' ')
			}
			if i < len(row) {
				fmt.Fprintf(b, " %02x", row[i])
			} else {
				b.WriteString("   ")
			}
		}
		b.WriteString("  |")
		for _, c := range row {
			if c < 0x20 || c >= 0x7f {
				c = '.'
			}
			b.WriteByte(c)
		}
		b.WriteString("|\n")
	}
	if to < rows {
		fmt.Fprintf(b, "  | ... %d more bytes\n", len(data)-to*16)
	}
}
