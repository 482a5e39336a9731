// Package session records what wirecat saw as a session file (JSON Lines,
// one event per line, written as it happens), reads it back as a stream, and
// exports it as a pcapng capture. The format is specified in
// docs/session-format.md; keep the two in step.
package session

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
)

// Version is the format version this package writes and the highest it
// reads. Version 2 added the wire bytes of a message (wire, wire_b64) and
// unframed chunks (unframed), which a version 1 reader would replay as
// framed messages; version 1 files are read as before.
const Version = 2

// MaxLine is the longest line a Reader accepts: a 64 MiB message in base64
// plus its fields.
const MaxLine = 96 << 20

// Header is the first line of a session file.
type Header struct {
	Version int       // format version; the Writer always writes Version
	Command string    // the command line that recorded it, e.g. "connect tcp://host:5000"
	Frame   string    // the framing spec messages were cut with, e.g. "line"
	Start   time.Time // every event's t is an offset from Start
	Host    string    // the machine that recorded it
	Writer  string    // the program that wrote it, e.g. "wirecat 0.4.0"
}

// builtinFramer is the framer of a header's frame spec when proto builds it
// (nil for raw and for a framer only a script defines, lua:FILE): the one
// whose encoding of a payload a recording leaves out when it is the wire.
func builtinFramer(spec string) proto.Framer {
	if spec == "" {
		return nil
	}
	f, err := proto.Parse(spec, nil)
	if err != nil || proto.IsRaw(f) {
		return nil
	}
	return f
}

// Errors a Reader wraps; test with errors.Is.
var (
	ErrNotSession = errors.New("not a wirecat session")
	ErrVersion    = errors.New("unsupported session version")
	ErrTruncated  = errors.New("truncated line")
)

// LineError is a damaged line: File:Line: Err.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string { return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Err.Error() }
func (e *LineError) Unwrap() error { return e.Err }

// sideName and parseSide keep the on-disk names of event.Side in one place.
func sideName(s event.Side) string {
	switch s {
	case event.Client:
		return "client"
	case event.Server:
		return "server"
	case event.Relay:
		return "relay"
	}
	return ""
}

func parseSide(s string) (event.Side, error) {
	switch s {
	case "client":
		return event.Client, nil
	case "server":
		return event.Server, nil
	case "relay":
		return event.Relay, nil
	}
	return 0, fmt.Errorf("unknown side %q (want client, server or relay)", s)
}

// Endpoints says which recorded address is the client's and which the
// server's. For a relay, Event.Remote is the peer that connected to wirecat
// (the client) and Event.Local the target it was relayed to (the server).
func Endpoints(role event.Side, local, remote string) (client, server string) {
	switch role {
	case event.Client:
		return local, remote
	case event.Server, event.Relay:
		return remote, local
	}
	return "", ""
}
