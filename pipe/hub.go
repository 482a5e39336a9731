package pipe

import (
	"bytes"
	"io"
	"sync"
)

// Hub hands one input to every connected peer: what listen -k reads on
// stdin goes to all of them.
type Hub struct {
	mu    sync.Mutex
	feeds map[*feed]struct{}
	ended bool
}

// NewHub returns a hub with no peers.
func NewHub() *Hub { return &Hub{feeds: map[*feed]struct{}{}} }

// Subscribe returns the Source for a new peer and a function to call when
// the peer is gone. Once the input has ended, new peers only receive: the
// Source is nil.
func (h *Hub) Subscribe() (Source, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended {
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
		h.mu.Lock()
		feeds = feeds[:0]
		for f := range h.feeds {
			feeds = append(feeds, f)
		}
		h.mu.Unlock()
		for _, f := range feeds {
			select {
			case f.ch <- own:
			case <-f.gone:
			}
		}
	}
}

func (h *Hub) end() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended = true
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
