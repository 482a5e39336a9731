package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/output"
	"github.com/wirecat-dev/wirecat/session"
)

// ShowCmd is `wirecat show`.
type ShowCmd struct {
	File   string `arg:"" placeholder:"FILE" predictor:"session" help:"The session file (--record wrote it)."`
	Output string `short:"o" placeholder:"MODE" enum:"text,hex,json" default:"text" help:"How to print it: text, hex or json."`
	Pcap   string `placeholder:"OUT.pcapng" type:"path" help:"Write the session as a pcapng capture for Wireshark and tshark instead of printing it."`
}

func (c *ShowCmd) Help() string {
	return `Prints a recorded session, both directions, every connection, as it
streams from the file (a session of any size is read in constant memory).
With --pcap, writes a capture instead: each connection a flow with its real
addresses, TCP with handshake, sequence numbers and FIN, UDP as datagrams.
Every recorded string (addresses, errors) is escaped as payloads are.
A damaged file is shown up to the damage, then the error names the line.

Examples:

    wirecat show board.jsonl
    wirecat show board.jsonl -o hex | less
    wirecat show board.jsonl -o json | jq -c 'select(.from == "server")'
    wirecat show board.jsonl --pcap board.pcapng && wireshark board.pcapng`
}

// streamMemory is the soft memory limit of show and replay, which stream
// a recording of any size: the garbage collector works harder near it
// rather than let the heap double (issue 9: peak RSS under 64 MiB). It is
// above what replay holds by design (16 MiB of queued messages and 32 MiB
// for connections not playing yet), so the collector does not run without
// end when those bounds are reached.
const streamMemory = 60 << 20

// limitStreamMemory sets streamMemory, unless the user chose a limit with
// GOMEMLIMIT (the runtime applied it already).
func limitStreamMemory() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(streamMemory)
	}
}

func (c *ShowCmd) Run(app *App, g *Globals) error {
	limitStreamMemory()
	r, err := openSession(c.File)
	if err != nil {
		return err
	}
	defer r.Close()
	log := g.logger(app)
	r.Note = func(s string) { log.Notef("%s", s) }
	if c.Pcap != "" {
		return c.exportPcap(r, log)
	}
	out, err := output.New(app.Stdout, output.Options{Mode: c.Output, ShowSent: true, Color: g.colour(app)})
	if err != nil {
		return usage(err)
	}
	if c.Output == "text" {
		h := r.Header()
		fmt.Fprintf(app.Stdout, "session %s: %s, frame %s, started %s\n", c.File,
			escape(orNone(h.Command)), escape(orNone(h.Frame)), h.Start.Format("2006-01-02 15:04:05.000 MST"))
	}
	for {
		e, err := r.NextEvent()
		if err == io.EOF {
			return out.Flush()
		}
		if err != nil {
			out.Flush()
			return err
		}
		if c.Output != "json" {
			escapeFields(e) // json escapes every string itself
		}
		if err := out.Emit(e); err != nil {
			return err
		}
	}
}

// escape returns s with control characters escaped (\x1b, \n), as a
// view shows payloads.
func escape(s string) string {
	if output.Printable([]byte(s)) && !strings.ContainsAny(s, "\n\r\t") {
		return s
	}
	return string(output.AppendEscaped(nil, []byte(s)))
}

// escapeFields escapes the recorded strings of e that a view prints as
// they are, as payloads are escaped: a file is data from anywhere, and an
// ESC sequence in an address or an error must not reach the terminal.
func escapeFields(e *event.Event) {
	esc := escape
	e.Transport, e.Local, e.Remote = esc(e.Transport), esc(e.Local), esc(e.Remote)
	if e.Err != nil {
		e.Err = errors.New(esc(e.Err.Error()))
	}
	if e.Unframed != nil {
		e.Unframed = errors.New(esc(e.Unframed.Error()))
	}
}

func (c *ShowCmd) exportPcap(r *session.Reader, log interface{ Debugf(string, ...any) }) error {
	f, err := os.Create(c.Pcap)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	err = session.ExportPcap(r, bw)
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("pcap: %w", ferr)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("pcap: %w", cerr)
	}
	if err == nil {
		log.Debugf("wrote %s", c.Pcap)
	}
	return err
}

// inputFileError applies SPEC's rule for every file a command line names
// to be read (a session, a script, --file, --cert...): missing or
// unreadable is a usage error, exit 2.
func inputFileError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return usage(err)
	}
	return err
}

// openSession opens a session file with errors that say what to do.
func openSession(path string) (*session.Reader, error) {
	r, err := session.Open(path)
	switch {
	case err == nil:
		return r, nil
	case errors.Is(err, session.ErrNotSession):
		return nil, hinted{err, "a session file is what --record FILE writes (JSON Lines with a header)"}
	}
	return nil, inputFileError(err)
}

func orNone(s string) string {
	if s == "" {
		return "(not recorded)"
	}
	return s
}
