package pipe

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
)

// next reads one message from src within a second.
func next(t *testing.T, src Source) (Message, error) {
	t.Helper()
	type res struct {
		m   Message
		err error
	}
	ch := make(chan res, 1)
	go func() { m, err := src.Next(); ch <- res{m, err} }()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-time.After(time.Second):
		t.Fatal("no message within a second")
		return Message{}, nil
	}
}

func TestBrokerPassesToOthersOnly(t *testing.T) {
	f, _ := proto.Parse("line", nil)
	b := &Broker{Hub: NewBroker(), Framer: f}
	a, doneA := b.Hub.Subscribe()
	c, doneC := b.Hub.Subscribe()
	defer doneC()
	sinkA := b.Peer(Meta{ID: 1}, a)
	sinkA.Emit(&event.Event{Kind: event.Data, Conn: 1, Role: event.Server, From: event.Client, Data: []byte("hi")})
	m, err := next(t, c)
	if err != nil || string(m.Payload) != "hi" || string(m.Wire) != "hi\n" {
		t.Fatalf("c got %q %q, %v", m.Payload, m.Wire, err)
	}
	if q := a.(*feed).Queued(); q != 0 {
		t.Fatalf("the sender got its own message back (%d queued)", q)
	}
	// What wirecat sends is not passed on: only what peers send.
	sinkA.Emit(&event.Event{Kind: event.Data, Conn: 1, Role: event.Server, From: event.Server, Data: []byte("out")})
	if q := c.(*feed).Queued(); q != 0 {
		t.Fatalf("a sent message was passed on")
	}
	doneA()
}

func TestBrokerFeedsOutliveInput(t *testing.T) {
	h := NewBroker()
	a, done := h.Subscribe()
	defer done()
	if err := h.Run(&list{}); err != nil { // stdin ends at once
		t.Fatal(err)
	}
	h.Publish(nil, Message{Payload: []byte("later"), Wire: []byte("later")})
	if m, err := next(t, a); err != nil || string(m.Payload) != "later" {
		t.Fatalf("after the input ended: %q, %v", m.Payload, err)
	}
	if b, _ := h.Subscribe(); b == nil {
		t.Fatal("a peer joining after the input ended gets no feed")
	}
	// A plain hub ends its peers with the input.
	p := NewHub()
	pa, pdone := p.Subscribe()
	defer pdone()
	p.Run(&list{})
	if _, err := next(t, pa); err != io.EOF {
		t.Fatalf("plain hub after the input: %v", err)
	}
}

func TestChatTagsAndAnnounces(t *testing.T) {
	f, _ := proto.Parse("line", nil)
	b := &Broker{Hub: NewBroker(), Framer: f, Chat: true}
	a, doneA := b.Hub.Subscribe()
	defer doneA()
	c, doneC := b.Hub.Subscribe()
	sinkC := b.Peer(Meta{ID: 7, Remote: "127.0.0.1:4000"}, c)
	if m, _ := next(t, a); string(m.Payload) != "<announce> <user7> joined from 127.0.0.1:4000" {
		t.Fatalf("join: %q", m.Payload)
	}
	sinkC.Emit(&event.Event{Kind: event.Data, Conn: 7, Role: event.Server, From: event.Client, Data: []byte("hello")})
	if m, _ := next(t, a); string(m.Wire) != "<user7> hello\n" {
		t.Fatalf("message: %q", m.Wire)
	}
	b.Leave(Meta{ID: 7}, c)
	doneC()
	if m, _ := next(t, a); !strings.HasSuffix(string(m.Payload), "<user7> left") {
		t.Fatalf("leave: %q", m.Payload)
	}
}
