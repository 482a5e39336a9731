package event

import (
	"errors"
	"testing"
)

type recorder struct {
	got []Kind
	err error
}

func (r *recorder) Emit(e *Event) error {
	r.got = append(r.got, e.Kind)
	return r.err
}

// A failing sink (stdout abandoned) does not starve the ones after it (the
// recording), and its error is still returned.
func TestTeeDeliversPastAFailingSink(t *testing.T) {
	boom := errors.New("stdout abandoned")
	first, failing, last := &recorder{}, &recorder{err: boom}, &recorder{}
	s := Tee(first, failing, nil, Discard, last)
	for _, k := range []Kind{Open, Data, Close} {
		if err := s.Emit(&Event{Kind: k}); !errors.Is(err, boom) {
			t.Fatalf("Emit: %v, want %v", err, boom)
		}
	}
	for _, r := range []*recorder{first, failing, last} {
		if len(r.got) != 3 || r.got[0] != Open || r.got[2] != Close {
			t.Errorf("a sink got %v, want open, data, close", r.got)
		}
	}
}

func TestTeeCollapses(t *testing.T) {
	if Tee() != Discard || Tee(nil, Discard) != Discard {
		t.Error("a Tee of nothing is not Discard")
	}
	r := &recorder{}
	if Tee(nil, r, Discard) != Sink(r) {
		t.Error("a Tee of one sink is not that sink")
	}
}

func TestReceivedAndOther(t *testing.T) {
	in := Event{Role: Server, From: Client}
	out := Event{Role: Server, From: Server}
	if !in.Received() || out.Received() {
		t.Error("Received is wrong")
	}
	if Client.Other() != Server || Server.Other() != Client || Relay.Other() != Relay {
		t.Error("Other is wrong")
	}
}
