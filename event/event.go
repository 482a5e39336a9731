// Package event defines what flows through wirecat: every connection opening,
// every message and every close is an Event, so display, recording and replay
// all read the same thing.
package event

import "time"

// Kind says what happened.
type Kind uint8

const (
	Open Kind = iota + 1
	Data
	Close
	Error
)

func (k Kind) String() string {
	switch k {
	case Open:
		return "open"
	case Data:
		return "data"
	case Close:
		return "close"
	case Error:
		return "error"
	}
	return "unknown"
}

// Side is one end of a connection.
type Side uint8

const (
	Client Side = iota + 1
	Server
	Relay // wirecat sits between both ends
)

func (s Side) String() string {
	switch s {
	case Client:
		return "client"
	case Server:
		return "server"
	case Relay:
		return "relay"
	}
	return "unknown"
}

// Other is the peer of a client or a server.
func (s Side) Other() Side {
	switch s {
	case Client:
		return Server
	case Server:
		return Client
	}
	return s
}

// Event is one thing that happened on one connection.
//
// An Event and its Data belong to the producer, which may reuse both once
// Emit returns (a hot loop emits millions): a Sink that keeps either copies it.
type Event struct {
	Kind      Kind
	Time      time.Time
	Conn      uint64 // connection id, unique in the process, from 1
	Transport string // tcp, udp, tls, unix, unixgram
	Local     string // local address, host:port or path
	Remote    string // remote address; for datagrams, the sender or destination
	Role      Side   // the side wirecat plays on this connection
	From      Side   // Data: the side that sent it; Close: the side that closed
	Data      []byte
	// Wire is, on Data, the bytes that crossed the wire for Data when a
	// framing cut them (the delimiter, a CR the line framing dropped, the
	// escapes) and they are known; nil when not known or when Data is the
	// wire bytes. Unframed says Data is a chunk of wire bytes that made no
	// message (a malformed frame, one over --max-frame, an unterminated
	// tail), with the reason.
	Wire     []byte
	Unframed error
	Err      error // Close and Error: what went wrong, if anything
	// Code and Reason are, on Close, the code and reason of the close
	// frame that ended the connection when its protocol has one (a
	// WebSocket's: 1000 and "", 4000 and "bye"); From then names the side
	// that sent it. 0 and "": none.
	Code   int
	Reason string
}

// Received reports whether a Data event came from the peer rather than from wirecat.
func (e *Event) Received() bool { return e.From != e.Role }

// Sink consumes events. Emit may be called from several goroutines at once
// (both directions of a connection, many connections): sinks lock.
type Sink interface {
	Emit(e *Event) error
}

// Discard is a Sink that keeps nothing.
var Discard Sink = discard{}

type discard struct{}

func (discard) Emit(*Event) error { return nil }

// Tee sends every event to each sink in turn, in the order given. A sink
// that fails (stdout closed or abandoned, a full disk) does not keep the
// event from the others: the recording still gets what stdout cannot
// take. Emit returns the first error.
func Tee(sinks ...Sink) Sink {
	var live []Sink
	for _, s := range sinks {
		if s != nil && s != Discard {
			live = append(live, s)
		}
	}
	switch len(live) {
	case 0:
		return Discard
	case 1:
		return live[0]
	}
	return tee(live)
}

type tee []Sink

func (t tee) Emit(e *Event) error {
	var first error
	for _, s := range t {
		if err := s.Emit(e); err != nil && first == nil {
			first = err
		}
	}
	return first
}
