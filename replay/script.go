// Package replay plays one side of a recorded session against a live peer:
// as a client it connects and says what the recorded client said; as a
// server it accepts connections and answers as the recorded server did, so
// a recording becomes a mock. Each conversation waits for the other side's
// turn and can check it against the recording.
package replay

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/session"
)

// Script is a recording loaded for replay: its connections in the order
// they opened.
type Script struct {
	Name   string
	Header session.Header
	Convs  []*Conv
}

// Conv is one recorded connection.
type Conv struct {
	ID        uint64
	Transport string     // tcp, udp, tls, unix, unixgram ("" when no open was recorded)
	Role      event.Side // the side wirecat played when recording
	Client    string     // the client's recorded address
	Server    string     // the server's recorded address
	Open      time.Duration
	Msgs      []Msg
	Closed    bool
	CloseT    time.Duration
	CloseBy   event.Side // 0: not recorded
	// CloseCode and CloseReason are the close frame that ended the
	// connection, sent by CloseBy (a WebSocket's); 0 and "": none recorded.
	CloseCode   int
	CloseReason string
}

// Msg is one recorded message.
type Msg struct {
	T    time.Duration // offset from the session start
	From event.Side
	Data []byte
	Wire []byte // the bytes on the wire, when recorded and not Data framed (session v2); nil otherwise
}

// msgOf is the message of a data record of r: its wire bytes kept when
// the recording says framing the payload would not give them.
func msgOf(r *session.Reader, rec *session.Record) Msg {
	return Msg{T: rec.T, From: rec.From, Data: rec.Data, Wire: r.RecordedWire(rec)}
}

// ErrNoConn is wrapped by the errors saying the recording has nothing to
// replay for the choice made.
var ErrNoConn = errors.New("nothing to replay")

// Load reads a whole session. Replay holds it in memory (a server mock plays
// it once per accepted connection); a damaged file is refused with the error
// naming its line.
func Load(r *session.Reader) (*Script, error) {
	s := &Script{Name: r.Name(), Header: r.Header()}
	live := map[uint64]*Conv{}
	get := func(rec *session.Record) *Conv {
		c := live[rec.Conn]
		if c == nil {
			c = &Conv{ID: rec.Conn, Open: rec.T}
			live[rec.Conn] = c
			s.Convs = append(s.Convs, c)
		}
		return c
	}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch rec.Kind {
		case event.Open:
			if old := live[rec.Conn]; old != nil && (old.Closed || old.Transport != "") {
				delete(live, rec.Conn) // an id used again: a new connection
			}
			c := get(&rec)
			c.Open, c.Transport, c.Role, c.Client, c.Server = rec.T, rec.Transport, rec.Role, rec.Client, rec.Server
		case event.Data:
			c := get(&rec)
			c.Msgs = append(c.Msgs, msgOf(r, &rec))
		case event.Close:
			c := get(&rec)
			c.Closed, c.CloseT, c.CloseBy = true, rec.T, rec.From
			c.CloseCode, c.CloseReason = rec.Code, rec.Reason
		}
	}
	sort.SliceStable(s.Convs, func(i, j int) bool { return s.Convs[i].Open < s.Convs[j].Open })
	return s, nil
}

// Roles says which sides wirecat played in the recording.
func (s *Script) Roles() (client, server, relay bool) {
	for _, c := range s.Convs {
		switch c.Role {
		case event.Client:
			client = true
		case event.Server:
			server = true
		case event.Relay:
			relay = true
		}
	}
	return
}

// DefaultSide is the side wirecat played when recording, or an error when
// that is not one side (a relay recording has both).
func (s *Script) DefaultSide() (event.Side, error) {
	client, server, relay := s.Roles()
	switch {
	case relay:
		return 0, fmt.Errorf("%s is a relay recording: it holds both sides; choose one with --as client or --as server", s.Name)
	case client && server:
		return 0, fmt.Errorf("%s has connections where wirecat was the client and others where it was the server; choose a side with --as client or --as server", s.Name)
	case server:
		return event.Server, nil
	}
	return event.Client, nil // a client, or a recording that does not say
}

// Select keeps the connections to replay as side: only connection id when
// id is not 0. It is an error (wrapping ErrNoConn) when none is left, or
// when side said nothing in any of them.
func (s *Script) Select(side event.Side, id uint64) ([]*Conv, error) {
	if len(s.Convs) == 0 {
		return nil, fmt.Errorf("%s has no connection: %w", s.Name, ErrNoConn)
	}
	convs := s.Convs
	if id != 0 {
		convs = nil
		for _, c := range s.Convs {
			if c.ID == id {
				convs = append(convs, c)
			}
		}
		if len(convs) == 0 {
			return nil, fmt.Errorf("%s has no connection %d (it has %s): %w", s.Name, id, s.ids(), ErrNoConn)
		}
	}
	for _, c := range convs {
		for _, m := range c.Msgs {
			if m.From == side {
				return convs, nil
			}
		}
	}
	which := "any connection"
	if id != 0 {
		which = fmt.Sprintf("connection %d", id)
	}
	return nil, fmt.Errorf("%s: the %s sent nothing in %s: %w as %s (try --as %s)",
		s.Name, side, which, ErrNoConn, side, side.Other())
}

func (s *Script) ids() string {
	if len(s.Convs) > 6 {
		lo, hi := s.Convs[0].ID, s.Convs[0].ID
		for _, c := range s.Convs {
			lo, hi = min(lo, c.ID), max(hi, c.ID)
		}
		return fmt.Sprintf("%d connections, %d to %d", len(s.Convs), lo, hi)
	}
	out := ""
	for i, c := range s.Convs {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprint(c.ID)
	}
	return out
}
