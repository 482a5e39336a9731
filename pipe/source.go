// Package pipe moves messages between a connection and the local side —
// stdin and stdout, a command, or every peer of a listener — reporting each
// one as an event.
package pipe

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
)

// InputModes lists the -i values.
var InputModes = []string{"raw", "lines", "hex"}

// Message is one message ready to go: its payload, as recorded and shown,
// and its bytes on the wire, encoded with the framing.
type Message struct {
	Payload []byte
	Wire    []byte
}

// Source produces the messages wirecat sends. Next returns io.EOF when the
// local side is done. The returned message is valid until the next call.
type Source interface {
	Next() (Message, error)
}

// Input reads messages from a local stream (stdin, a file) in one of the
// -i modes and encodes them with the framing.
type Input struct {
	r      *bufio.Reader
	mode   string
	framer proto.Framer
	buf    []byte
	wire   []byte
	line   int
}

// NewInput reads r in mode raw, lines or hex. In raw mode bytes go out as
// they come, whatever the framing: the user already framed them.
func NewInput(r io.Reader, mode string, f proto.Framer) (*Input, error) {
	switch mode {
	case "raw", "lines", "hex":
	default:
		return nil, fmt.Errorf("unknown input mode %q (want %s)", mode, strings.Join(InputModes, ", "))
	}
	return &Input{r: bufio.NewReaderSize(r, 256<<10), mode: mode, framer: f}, nil
}

// Buffered reports how many input bytes are already read and waiting.
func (in *Input) Buffered() int { return in.r.Buffered() }

// Next returns the next message.
func (in *Input) Next() (Message, error) {
	if in.mode == "raw" {
		if in.buf == nil {
			in.buf = make([]byte, 256<<10)
		}
		n, err := in.r.Read(in.buf)
		if n > 0 {
			return Message{Payload: in.buf[:n], Wire: in.buf[:n]}, nil
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return Message{}, err
	}
	for {
		line, err := in.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: gather it whole.
			in.buf = append(in.buf[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = in.r.ReadSlice('\n')
				in.buf = append(in.buf, line...)
			}
			line = in.buf
		}
		if len(line) == 0 && err != nil {
			return Message{}, err
		}
		in.line++
		line = bytes.TrimSuffix(line, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		payload := line
		if in.mode == "hex" {
			if len(bytes.TrimSpace(line)) == 0 {
				continue // blank lines separate nothing
			}
			p, herr := proto.ParseHex(string(line))
			if herr != nil {
				return Message{}, fmt.Errorf("stdin line %d: %w", in.line, herr)
			}
			payload = p
		}
		wire, eerr := in.framer.Encode(in.wire[:0], payload)
		if eerr != nil {
			return Message{}, fmt.Errorf("stdin line %d: %w", in.line, eerr)
		}
		in.wire = wire
		return Message{Payload: payload, Wire: wire}, nil
	}
}

var lastID atomic.Uint64

// NextID hands out connection ids, unique in the process, from 1.
func NextID() uint64 { return lastID.Add(1) }

// Meta is what every event of one connection shares.
type Meta struct {
	ID        uint64
	Transport string
	Local     string
	Remote    string
	Role      event.Side
}

func (m *Meta) event(k event.Kind, from event.Side, data []byte, err error) *event.Event {
	return &event.Event{
		Kind: k, Time: time.Now(), Conn: m.ID, Transport: m.Transport,
		Local: m.Local, Remote: m.Remote, Role: m.Role, From: from, Data: data, Err: err,
	}
}
