package pipe

import (
	"bytes"
	"io"
	"sync"
)

// Hub hands one input to every connected peer: what listen -k reads on
// stdin goes to all of them. A broker hub also passes what each peer sends
// to every other peer (Publish).
type Hub struct {
	mu     sync.Mutex
	feeds  map[*feed]struct{}
	ended  bool
	broker bool
}

// NewHub returns a hub with no peers.
func NewHub() *Hub { return &Hub{feeds: map[*feed]struct{}{}} }

// NewBroker returns a hub whose peers also hear each other (listen -k
// --broker): their feeds outlive the input, since other peers still talk.
func NewBroker() *Hub { return &Hub{feeds: map[*feed]struct{}{}, broker: true} }

// Broker reports a hub made by NewBroker.
func (h *Hub) Broker() bool { return h.broker }

// Subscribe returns the Source for a new peer and a function to call when
// the peer is gone. Once the input has ended, new peers of a plain hub only
// receive: the Source is nil.
func (h *Hub) Subscribe() (Source, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended && !h.broker {
		return nil, func() {}
	}
	f := &feed{ch: make(chan Message, 16), gone: make(chan struct{})}
	h.feeds[f] = struct{}{}
	return f, func() {
		h.mu.Lock()
		delete(h.feeds, f)
		h.mu.Unlock()
		close(f.gone)
	}
}

// Peers returns how many peers are subscribed.
func (h *Hub) Peers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.feeds)
}

// Run reads src until it ends and hands each message to every peer there
// is at that moment; a slow peer slows the input rather than losing data.
// At the end each peer's Source reports io.EOF.
func (h *Hub) Run(src Source) error {
	defer h.end()
	var feeds []*feed // reused: the peers of one message
	for {
		msg, err := src.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		// One copy shared read-only by every peer.
		own := Message{Payload: bytes.Clone(msg.Payload)}
		own.Wire = own.Payload
		if !bytes.Equal(msg.Wire, msg.Payload) {
			own.Wire = bytes.Clone(msg.Wire)
		}
		feeds = h.deliver(feeds, nil, own)
	}
}

// Publish hands msg, which the caller no longer uses, to every peer but
// from (the Source Subscribe gave the sender). Like Run, it waits for a
// slow peer: the sender is slowed rather than data lost (ncat's broker
// does the same).
func (h *Hub) Publish(from Source, msg Message) {
	h.deliver(nil, from, msg)
}

// deliver hands msg to every peer there is at this moment but skip, with
// feeds as scratch space; it returns feeds for reuse.
func (h *Hub) deliver(feeds []*feed, skip Source, msg Message) []*feed {
	h.mu.Lock()
	feeds = feeds[:0]
	for f := range h.feeds {
		if Source(f) != skip {
			feeds = append(feeds, f)
		}
	}
	h.mu.Unlock()
	for _, f := range feeds {
		select {
		case f.ch <- msg:
		case <-f.gone:
		}
	}
	return feeds
}

func (h *Hub) end() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended = true
	if h.broker {
		return // the peers still hear each other
	}
	for f := range h.feeds {
		close(f.ch)
	}
	h.feeds = map[*feed]struct{}{}
}

type feed struct {
	ch   chan Message
	gone chan struct{}
}

// Queued reports how many messages wait for this peer.
func (f *feed) Queued() int { return len(f.ch) }

// Next waits for the next message; it reports io.EOF when the input ended
// or the peer is gone, so a peer's sender never outlives it waiting on a
// stdin that says nothing.
func (f *feed) Next() (Message, error) {
	select {
	case msg, ok := <-f.ch:
		if !ok {
			return Message{}, io.EOF
		}
		return msg, nil
	case <-f.gone:
		return Message{}, io.EOF
	}
}
