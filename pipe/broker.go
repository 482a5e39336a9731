package pipe

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/wirecat-dev/wirecat/diag"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
)

// Broker passes what each peer of a listener sends to every other peer
// (listen -k --broker, ncat's --broker). With Chat, each message is tagged
// with its sender, `<user3> hello`, and peers hear who joins and leaves.
type Broker struct {
	Hub    *Hub         // made by NewBroker
	Framer proto.Framer // encodes what is passed on
	Chat   bool
	Log    *diag.Log
}

// Peer returns the sink that passes on what the peer m, subscribed to the
// hub as feed, sends. Call Leave when the peer is gone.
func (b *Broker) Peer(m Meta, feed Source) event.Sink {
	if b.Chat {
		b.publish(feed, []byte(fmt.Sprintf("<announce> %s joined from %s", user(m.ID), m.Remote)))
	}
	return &brokerSink{b: b, feed: feed}
}

// Leave tells the others that peer m left (with Chat).
func (b *Broker) Leave(m Meta, feed Source) {
	if b.Chat {
		b.publish(feed, []byte(fmt.Sprintf("<announce> %s left", user(m.ID))))
	}
}

func user(id uint64) string { return "<user" + strconv.FormatUint(id, 10) + ">" }

// publish encodes payload, which it keeps, and hands it to every peer but from.
func (b *Broker) publish(from Source, payload []byte) {
	wire, err := b.Framer.Encode(nil, payload)
	if err != nil {
		b.Log.Notef("broker: not passed on: %v", err)
		return
	}
	b.Hub.Publish(from, Message{Payload: payload, Wire: wire})
}

type brokerSink struct {
	b    *Broker
	feed Source
}

func (s *brokerSink) Emit(e *event.Event) error {
	if e.Kind != event.Data || !e.Received() {
		return nil
	}
	var payload []byte
	if s.b.Chat {
		payload = append(append([]byte(user(e.Conn)), ' '), e.Data...)
	} else {
		payload = bytes.Clone(e.Data) // e.Data is the reader's buffer
	}
	s.b.publish(s.feed, payload)
	return nil
}
