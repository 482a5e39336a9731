package output

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
)

var at = time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)

// session is one connection as wirecat the server saw it: open, a line in,
// a message out, binary in, an error, closed by the peer.
func session() []*event.Event {
	base := event.Event{Time: at, Conn: 7, Transport: "tcp", Local: "127.0.0.1:5000", Remote: "127.0.0.1:40000", Role: event.Server}
	ev := func(k event.Kind, from event.Side, data string, err error) *event.Event {
		e := base
		e.Kind, e.From, e.Data, e.Err = k, from, []byte(data), err
		return &e
	}
	return []*event.Event{
		ev(event.Open, 0, "", nil),
		ev(event.Data, event.Client, "hi\n", nil),
		ev(event.Data, event.Server, "sent", nil),
		ev(event.Data, event.Client, "\x00\x01\xff", nil),
		ev(event.Error, 0, "", errors.New("boom")),
		ev(event.Close, event.Client, "", nil),
	}
}

func render(t *testing.T, opt Options, evs []*event.Event) string {
	t.Helper()
	var b bytes.Buffer
	w, err := New(&b, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if err := w.Emit(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

const prefix = "03:04:05.678 #7 127.0.0.1:40000 "

func TestModesGolden(t *testing.T) {
	cases := []struct {
		mode string
		sent bool
		want string
	}{
		{"raw", false, "hi\n\x00\x01\xff"},
		{"raw", true, "hi\nsent\x00\x01\xff"},
		{"lines", false, "hi\n\n\x00\x01\xff\n"},
		{"lines", true, "hi\n\nsent\n\x00\x01\xff\n"},
		{"text", false, prefix + "open tcp (wirecat is the server)\n" +
			prefix + `← hi\n` + "\n" +
			prefix + `← \0\x01\xff` + "\n" +
			prefix + "error: boom\n" +
			prefix + "closed by peer\n"},
		{"text", true, prefix + "open tcp (wirecat is the server)\n" +
			prefix + `← hi\n` + "\n" +
			prefix + "→ sent\n" +
			prefix + `← \0\x01\xff` + "\n" +
			prefix + "error: boom\n" +
			prefix + "closed by peer\n"},
		{"hex", true, prefix + "open tcp (wirecat is the server)\n" +
			prefix + "← 3 bytes\n" +
			"00000000  68 69 0a                                          |hi.|\n" +
			prefix + "→ 4 bytes\n" +
			"00000000  73 65 6e 74                                       |sent|\n" +
			prefix + "← 3 bytes\n" +
			"00000000  00 01 ff                                          |...|\n" +
			prefix + "error: boom\n" +
			prefix + "closed by peer\n"},
		{"json", true, `{"time":"2026-01-02T03:04:05.678Z","event":"open","conn":7,"transport":"tcp","local":"127.0.0.1:5000","peer":"127.0.0.1:40000","role":"server"}
{"time":"2026-01-02T03:04:05.678Z","event":"data","conn":7,"peer":"127.0.0.1:40000","dir":"in","from":"client","len":3,"text":"hi\n"}
{"time":"2026-01-02T03:04:05.678Z","event":"data","conn":7,"peer":"127.0.0.1:40000","dir":"out","from":"server","len":4,"text":"sent"}
{"time":"2026-01-02T03:04:05.678Z","event":"data","conn":7,"peer":"127.0.0.1:40000","dir":"in","from":"client","len":3,"b64":"AAH/"}
{"time":"2026-01-02T03:04:05.678Z","event":"error","conn":7,"peer":"127.0.0.1:40000","error":"boom"}
{"time":"2026-01-02T03:04:05.678Z","event":"close","conn":7,"peer":"127.0.0.1:40000","by":"client"}
`},
	}
	for _, c := range cases {
		if got := render(t, Options{Mode: c.mode, ShowSent: c.sent}, session()); got != c.want {
			t.Errorf("%s (sent %v):\ngot  %q\nwant %q", c.mode, c.sent, got, c.want)
		}
	}
}

func TestJSONIsValidAndEmptyPayloadsKeepTheirLength(t *testing.T) {
	e := &event.Event{Kind: event.Data, Time: at, Conn: 1, Remote: "x", Role: event.Client, From: event.Server, Data: nil}
	got := render(t, Options{Mode: "json"}, []*event.Event{e})
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Fatal(err)
	}
	if m["len"] != float64(0) {
		t.Fatalf("an empty message should say len 0: %s", got)
	}
}

func TestTextWithConnectionCloseErrorAndRoles(t *testing.T) {
	e := &event.Event{Kind: event.Close, Time: at, Conn: 2, Remote: "r", Role: event.Client, From: event.Client, Err: errors.New("idle timeout")}
	if got, want := render(t, Options{Mode: "text"}, []*event.Event{e}), "03:04:05.678 #2 r closed by wirecat: idle timeout\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	relay := []*event.Event{
		{Kind: event.Open, Time: at, Conn: 3, Transport: "tls", Remote: "r", Role: event.Relay},
		{Kind: event.Data, Time: at, Conn: 3, Remote: "r", Role: event.Relay, From: event.Client, Data: []byte("up")},
		{Kind: event.Data, Time: at, Conn: 3, Remote: "r", Role: event.Relay, From: event.Server, Data: []byte("down")},
		{Kind: event.Close, Time: at, Conn: 3, Remote: "r", Role: event.Relay, From: event.Server},
	}
	want := "03:04:05.678 #3 r open tls (relayed)\n" +
		"03:04:05.678 #3 r client→server up\n" +
		"03:04:05.678 #3 r server→client down\n" +
		"03:04:05.678 #3 r closed by server\n"
	if got := render(t, Options{Mode: "text", ShowSent: true}, relay); got != want {
		t.Errorf("relay:\ngot  %q\nwant %q", got, want)
	}
}

func TestColour(t *testing.T) {
	plain := render(t, Options{Mode: "text", ShowSent: true}, session())
	coloured := render(t, Options{Mode: "text", ShowSent: true, Color: true}, session())
	if strings.Contains(plain, "\x1b[") {
		t.Fatalf("colour without Color: %q", plain)
	}
	if !strings.Contains(coloured, "\x1b[") {
		t.Fatalf("no colour with Color: %q", coloured)
	}
	// Stripped of its escapes, the coloured view is the plain one.
	if got := stripANSI(coloured); got != plain {
		t.Fatalf("colour changes the text:\n%q\n%q", got, plain)
	}
	// Received and sent arrows are told apart by colour in text and hex alike.
	for _, mode := range []string{"text", "hex"} {
		out := render(t, Options{Mode: mode, ShowSent: true, Color: true}, session())
		in := ansiBefore(out, "←")
		sent := ansiBefore(out, "→")
		if in == "" || sent == "" || in == sent {
			t.Errorf("%s: received arrow %q and sent arrow %q should differ in colour", mode, in, sent)
		}
	}
	// raw, lines and json never carry colour.
	for _, mode := range []string{"raw", "lines", "json"} {
		if out := render(t, Options{Mode: mode, ShowSent: true, Color: true}, session()); strings.Contains(out, "\x1b[") {
			t.Errorf("%s carries colour: %q", mode, out)
		}
	}
}

// ansiBefore returns the escape sequence right before the first s in out.
func ansiBefore(out, s string) string {
	i := strings.Index(out, s)
	if i < 0 {
		return ""
	}
	j := strings.LastIndex(out[:i], "\x1b[")
	if j < 0 || !strings.HasSuffix(out[:i], "m") {
		return ""
	}
	return out[j:i]
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestUnknownMode(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, Options{Mode: "xml"}); err == nil || !strings.Contains(err.Error(), "raw, lines, text, hex, json") {
		t.Fatalf("New(xml) = %v", err)
	}
}

func TestPrintable(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"", true},
		{"hello", true},
		{"tab\tnl\ncr\r", true},
		{"héllo ✓ 温度", true},
		{"\x00", false},
		{"bell\a", false},
		{"esc\x1b[31m", false},
		{"del\x7f", false},
		{"\xff", false},
		{"\xc3", false},                // truncated UTF-8
		{"\xed\xa0\x80", false},        // a surrogate
		{"c1 \u0085 next line", false}, // C1 controls, as the session format says
		{"c1 \u009b csi", false},
	} {
		if got := Printable([]byte(c.in)); got != c.want {
			t.Errorf("Printable(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestAppendEscaped(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a\nb\r\tc", `a\nb\r\tc`},
		{"nul\x00", `nul\0`},
		{`back\slash`, `back\\slash`},
		{"\x01\x1b\x7f\xff", `\x01\x1b\x7f\xff`},
		{"héllo ✓", "héllo ✓"},
		{"\xc3(", `\xc3(`},
		{"csi \u009b2J", `csi \xc2\x9b2J`}, // a C1 control would drive the terminal
	} {
		if got := string(AppendEscaped([]byte("> "), []byte(c.in))); got != "> "+c.want {
			t.Errorf("AppendEscaped(%q) = %q, want %q", c.in, got, "> "+c.want)
		}
	}
}

func TestConcurrentEmit(t *testing.T) {
	var b bytes.Buffer
	w, _ := New(&b, Options{Mode: "lines"})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := &event.Event{Kind: event.Data, Role: event.Client, From: event.Server, Data: []byte("0123456789")}
			for i := 0; i < 1000; i++ {
				w.Emit(e)
			}
		}()
	}
	wg.Wait()
	w.Flush()
	for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if line != "0123456789" {
			t.Fatalf("interleaved line %q", line)
		}
	}
	if n := strings.Count(b.String(), "\n"); n != 8000 {
		t.Fatalf("%d lines", n)
	}
}
