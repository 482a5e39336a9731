package session

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/wirecat-dev/wirecat/event"
)

// A recording keeps what is needed to put the exact wire bytes back: only
// where framing the payload would not give them (issue 9).
func TestWireBytes(t *testing.T) {
	data := func(payload, wire string, unframed error) *event.Event {
		e := &event.Event{Kind: event.Data, Time: t0, Conn: 1, From: event.Client, Data: []byte(payload), Unframed: unframed}
		if wire != "" {
			e.Wire = []byte(wire)
		}
		return e
	}
	evs := []*event.Event{
		data("plain", "plain\n", nil),                     // the framing's own encoding: not stored
		data("GET / HTTP/1.1", "GET / HTTP/1.1\r\n", nil), // a CRLF under --frame line
		data("tail", "tail", nil),                         // no newline at the end
		data("\x00\xff", "\x00\xff\n", nil),
		data("x\xc0\r", "x\xc0\r", errors.New("message larger than --max-frame")),
		data("from a producer that does not know the wire", "", nil),
	}
	file := record(t, evs)
	lines := strings.Split(strings.TrimSpace(string(file)), "\n")[1:]
	for i, want := range []string{
		`"text":"plain"}`,
		`"text":"GET / HTTP/1.1","wire":"GET / HTTP/1.1\r\n"}`,
		`"text":"tail","wire":"tail"}`,
		`"b64":"AP8="}`,
		`"b64":"eMAN","unframed":"message larger than --max-frame"}`,
		`"text":"from a producer that does not know the wire"}`,
	} {
		if !strings.HasSuffix(lines[i], want) {
			t.Errorf("line %d: %s\nwant ...%s", i+2, lines[i], want)
		}
	}
	r, err := NewReader(bytes.NewReader(file), "x.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"plain\n", "GET / HTTP/1.1\r\n", "tail", "\x00\xff\n", "x\xc0\r", "from a producer that does not know the wire\n"} {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got := string(rec.WireBytes(r.Framer())); got != want {
			t.Errorf("record %d: wire %q, want %q", i+1, got, want)
		}
		if string(rec.Data) != string(evs[i].Data) {
			t.Errorf("record %d: payload %q", i+1, rec.Data)
		}
		if (rec.Unframed != "") != (evs[i].Unframed != nil) {
			t.Errorf("record %d: unframed %q", i+1, rec.Unframed)
		}
	}
}

// Version 1 files (no wire bytes) still read: the wire is the payload
// framed with the header's framing.
func TestReadVersion1(t *testing.T) {
	file := `{"wirecat":"session","version":1,"frame":"crlf","start":"2025-03-14T15:09:26Z"}` + "\n" +
		`{"t":1,"ev":"data","conn":1,"from":"client","text":"a"}` + "\n"
	r, err := NewReader(strings.NewReader(file), "v1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.Next()
	if err != nil || string(rec.WireBytes(r.Framer())) != "a\r\n" {
		t.Fatalf("%q %v", rec.WireBytes(r.Framer()), err)
	}
}

// A file with many opens and no closes costs a bounded table, and says so
// once (issue 9: 2 million opens used 983 MB).
func TestOpensBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"wirecat":"session","version":2,"start":"2025-03-14T15:09:26Z"}` + "\n")
	const n = 5000
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"t":1,"ev":"open","conn":%d,"transport":"tcp","role":"server","local":"127.0.0.1:1","remote":"127.0.0.1:%d"}`+"\n", i, i)
	}
	fmt.Fprintf(&b, `{"t":2,"ev":"data","conn":%d,"from":"client","text":"new"}`+"\n", n)
	b.WriteString(`{"t":2,"ev":"data","conn":1,"from":"client","text":"old"}` + "\n")
	r, err := NewReader(strings.NewReader(b.String()), "many.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	r.MaxOpen = 100
	var notes []string
	r.Note = func(s string) { notes = append(notes, s) }
	var last []*event.Event
	for {
		e, err := r.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(r.opens) > 100 || len(r.order) > 200 {
			t.Fatalf("%d open records kept, ring of %d", len(r.opens), len(r.order))
		}
		if e.Kind == event.Data {
			last = append(last, e)
		}
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "many.jsonl:102: more than 100 connections open at once") {
		t.Errorf("notes %q", notes)
	}
	if last[0].Remote != fmt.Sprintf("127.0.0.1:%d", n) || last[1].Remote != "" {
		t.Errorf("remotes %q %q", last[0].Remote, last[1].Remote)
	}
}

// A framing a reader cannot build (lua:FILE) records every difference, so
// a payload without wire bytes is its own wire; version 1 files leave it
// to the caller's framer.
func TestRecordedWire(t *testing.T) {
	for _, tc := range []struct {
		head, line string
		want       []byte
	}{
		{`{"wirecat":"session","version":2,"frame":"lua:x.lua"}`, `{"t":1,"ev":"data","conn":1,"from":"client","text":"a"}`, []byte("a")},
		{`{"wirecat":"session","version":1,"frame":"lua:x.lua"}`, `{"t":1,"ev":"data","conn":1,"from":"client","text":"a"}`, nil},
		{`{"wirecat":"session","version":2,"frame":"line"}`, `{"t":1,"ev":"data","conn":1,"from":"client","text":"a"}`, nil},
		{`{"wirecat":"session","version":2,"frame":"line"}`, `{"t":1,"ev":"data","conn":1,"from":"client","text":"a","wire":"a\r\n"}`, []byte("a\r\n")},
		{`{"wirecat":"session","version":2,"frame":"slip"}`, `{"t":1,"ev":"data","conn":1,"from":"client","text":"a","unframed":"x"}`, []byte("a")},
	} {
		r, err := NewReader(strings.NewReader(tc.head+"\n"+tc.line+"\n"), "x")
		if err != nil {
			t.Fatal(err)
		}
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got := r.RecordedWire(&rec); !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("%s %s: %q, want %q", tc.head, tc.line, got, tc.want)
		}
	}
}
