package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wirecat-dev/wirecat/event"
)

var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

func testHeader() Header {
	return Header{Command: "connect tcp://127.0.0.1:5000", Frame: "line", Start: t0, Host: "bench", Writer: "wirecat test"}
}

// sample is a conversation using every kind of event and payload.
func sample() []*event.Event {
	open := func(conn uint64, tr string, role event.Side, local, remote string, at time.Duration) *event.Event {
		return &event.Event{Kind: event.Open, Time: t0.Add(at), Conn: conn, Transport: tr, Role: role, Local: local, Remote: remote}
	}
	data := func(conn uint64, from event.Side, p string, at time.Duration) *event.Event {
		return &event.Event{Kind: event.Data, Time: t0.Add(at), Conn: conn, From: from, Data: []byte(p)}
	}
	return []*event.Event{
		open(1, "tcp", event.Client, "127.0.0.1:40000", "127.0.0.1:5000", 123*time.Microsecond),
		data(1, event.Client, "hello\n", 1500*time.Millisecond),
		data(1, event.Server, "\x00\xff binary \x01", 1500*time.Millisecond+1),
		data(1, event.Server, `quote " backslash \ tab	cr`+"\r", 2*time.Second),
		data(1, event.Client, "héllo ✓ 日本", 3*time.Second),
		data(1, event.Client, "c1 control \u0085", 3*time.Second),
		data(1, event.Client, "del \x7f", 3*time.Second),
		data(1, event.Client, "", 3*time.Second),
		data(1, event.Client, "bad utf8 \xc3\x28", 3*time.Second),
		{Kind: event.Error, Time: t0.Add(4 * time.Second), Conn: 1, Err: errors.New("read: connection reset by peer \"x\"")},
		{Kind: event.Close, Time: t0.Add(4 * time.Second), Conn: 1, From: event.Server, Err: errors.New("reset")},
		open(2, "udp", event.Server, "[::1]:5000", "[::1]:41000", 5*time.Second),
		data(2, event.Client, "ping", 5*time.Second),
		{Kind: event.Close, Time: t0.Add(6 * time.Second), Conn: 2, From: event.Client, Code: 4000, Reason: "bye \"now\""},
		open(3, "tcp", event.Relay, "10.0.0.2:80", "10.0.0.9:5555", 7*time.Second),
		{Kind: event.Error, Time: t0.Add(8 * time.Second), Conn: 0, Err: errors.New("accept: too many open files")},
	}
}

func record(t testing.TB, evs []*event.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if err := w.Emit(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(t testing.TB, file []byte, name string) ([]Record, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(file), name)
	if err != nil {
		return nil, err
	}
	var recs []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return recs, err
		}
		recs = append(recs, rec)
	}
}

func TestRoundTrip(t *testing.T) {
	evs := sample()
	file := record(t, evs)
	lines := strings.Split(strings.TrimSuffix(string(file), "\n"), "\n")
	if len(lines) != len(evs)+1 {
		t.Fatalf("%d lines for %d events", len(lines), len(evs))
	}
	for i, l := range lines { // every line is JSON on its own
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d %s: %v", i+1, l, err)
		}
	}
	want := []string{
		`{"wirecat":"session","version":2,"command":"connect tcp://127.0.0.1:5000","frame":"line","start":"2025-03-14T15:09:26.535897932Z","host":"bench","writer":"wirecat test"}`,
		`{"t":0.000123,"ev":"open","conn":1,"transport":"tcp","role":"client","local":"127.0.0.1:40000","remote":"127.0.0.1:5000","client":"127.0.0.1:40000","server":"127.0.0.1:5000"}`,
		`{"t":1.5,"ev":"data","conn":1,"from":"client","text":"hello\n"}`,
		`{"t":1.500000001,"ev":"data","conn":1,"from":"server","b64":"AP8gYmluYXJ5IAE="}`,
		`{"t":2,"ev":"data","conn":1,"from":"server","text":"quote \" backslash \\ tab\tcr\r"}`,
		`{"t":3,"ev":"data","conn":1,"from":"client","text":"héllo ✓ 日本"}`,
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], w)
		}
	}
	for _, l := range []string{lines[6], lines[7], lines[9]} { // C1, DEL and invalid UTF-8 are not text
		if !strings.Contains(l, `"b64":`) {
			t.Errorf("want base64: %s", l)
		}
	}
	if !strings.Contains(string(file), `{"t":6,"ev":"close","conn":2,"by":"client","code":4000,"reason":"bye \"now\""}`+"\n") {
		t.Errorf("a close frame's code and reason: %s", file)
	}
	if l := lines[8]; !strings.Contains(l, `"text":""`) {
		t.Errorf("empty payload: %s", l)
	}

	r, err := NewReader(bytes.NewReader(file), "x.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header()
	if h.Version != 2 || h.Command != testHeader().Command || h.Frame != "line" || !h.Start.Equal(t0) || h.Host != "bench" || h.Writer != "wirecat test" {
		t.Errorf("header %+v", h)
	}
	for i, e := range evs {
		rec, err := r.Next()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if rec.Line != i+2 {
			t.Errorf("record %d: line %d", i, rec.Line)
		}
		got := rec.Event(h.Start)
		if got.Kind != e.Kind || !got.Time.Equal(e.Time) || got.Conn != e.Conn {
			t.Errorf("record %d: %v %v %d, want %v %v %d", i, got.Kind, got.Time, got.Conn, e.Kind, e.Time, e.Conn)
		}
		switch e.Kind {
		case event.Open:
			if got.Transport != e.Transport || got.Role != e.Role || got.Local != e.Local || got.Remote != e.Remote {
				t.Errorf("record %d: open %+v, want %+v", i, got, e)
			}
			c, s := Endpoints(e.Role, e.Local, e.Remote)
			if rec.Client != c || rec.Server != s {
				t.Errorf("record %d: client %q server %q, want %q %q", i, rec.Client, rec.Server, c, s)
			}
		case event.Data:
			if got.From != e.From || !bytes.Equal(got.Data, e.Data) || got.Data == nil {
				t.Errorf("record %d: from %v %q, want %v %q", i, got.From, got.Data, e.From, e.Data)
			}
		case event.Close, event.Error:
			if got.From != e.From || fmt.Sprint(got.Err) != fmt.Sprint(e.Err) || got.Code != e.Code || got.Reason != e.Reason {
				t.Errorf("record %d: by %v err %v code %d %q, want %v %v %d %q", i, got.From, got.Err, got.Code, got.Reason, e.From, e.Err, e.Code, e.Reason)
			}
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last record: %v", err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("EOF is not sticky: %v", err)
	}
}

func TestNextEvent(t *testing.T) {
	evs := sample()
	r, err := NewReader(bytes.NewReader(record(t, evs)), "x.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range evs {
		e, err := r.NextEvent()
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind != want.Kind || !e.Time.Equal(want.Time) || e.Conn != want.Conn || !bytes.Equal(e.Data, want.Data) {
			t.Fatalf("event %d: %+v, want %+v", i, e, want)
		}
		var open *event.Event
		for _, o := range evs[:i+1] {
			if o.Kind == event.Open && o.Conn == want.Conn {
				open = o
			}
		}
		if open != nil && (e.Transport != open.Transport || e.Role != open.Role || e.Local != open.Local || e.Remote != open.Remote) {
			t.Errorf("event %d lacks its connection's details: %+v", i, e)
		}
		if e.Kind == event.Data && e.Received() != (e.From != open.Role) {
			t.Errorf("event %d: Received() wrong", i)
		}
	}
	if _, err := r.NextEvent(); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
	if len(r.opens) != 1 { // conn 3 never closed; 1 and 2 forgotten at their close
		t.Errorf("%d connections still tracked", len(r.opens))
	}
}

func TestEndpoints(t *testing.T) {
	for _, tc := range []struct {
		role           event.Side
		client, server string
	}{{event.Client, "L", "R"}, {event.Server, "R", "L"}, {event.Relay, "R", "L"}} {
		c, s := Endpoints(tc.role, "L", "R")
		if c != tc.client || s != tc.server {
			t.Errorf("%v: %s %s", tc.role, c, s)
		}
	}
}

// TestTextEncoding checks the hand-rolled escaper against encoding/json on
// strings of every length around the 8-byte fast path.
func TestTextEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", " ", "\"", "\\", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "é", "✓", "\u0085", "\u2028", "\xff", "\xc3", "😀", "~"}
	for n := range 40 {
		for range 200 {
			var sb strings.Builder
			for range n {
				sb.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			p := []byte(sb.String())
			enc, ok := appendText(nil, p)
			if ok {
				var s string
				if err := json.Unmarshal(enc, &s); err != nil || s != string(p) {
					t.Fatalf("appendText(%q) = %s: %q %v", p, enc, s, err)
				}
			}
			if ok != slowPrintable(p) {
				t.Fatalf("appendText(%q) printable %v", p, ok)
			}
			enc = appendString(nil, string(p))
			var s, want string
			for _, r := range string(p) { // invalid bytes become U+FFFD one by one
				want += string(r)
			}
			if err := json.Unmarshal(enc, &s); err != nil || s != want {
				t.Fatalf("appendString(%q) = %s: %q %v", p, enc, s, err)
			}
		}
	}
}

func slowPrintable(p []byte) bool {
	if !utf8.Valid(p) {
		return false
	}
	for _, r := range string(p) {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || (r >= 0x7f && r <= 0x9f) {
			return false
		}
	}
	return true
}

func TestSeconds(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 999, time.Microsecond * 123, 1500 * time.Millisecond, 2 * time.Second,
		-time.Millisecond, 86400*365*time.Second + 7, 1<<62 + 3} {
		s := string(appendSeconds(nil, d))
		got, err := parseSeconds(s)
		if err != nil || got != d {
			t.Errorf("%v -> %s -> %v %v", d, s, got, err)
		}
	}
	for in, want := range map[string]time.Duration{
		"1.5e-05": 15 * time.Microsecond, "2E3": 2000 * time.Second, "0.1234567891": 123456789, "-0.5": -500 * time.Millisecond,
	} {
		if got, err := parseSeconds(in); err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	if _, err := parseSeconds("1e300"); err == nil {
		t.Error("1e300 seconds accepted")
	}
}

func TestDamaged(t *testing.T) {
	defer func(m int) { maxLine = m }(maxLine)
	maxLine = 2 << 20
	head := `{"wirecat":"session","version":1,"start":"2025-03-14T15:09:26Z"}` + "\n"
	good := `{"t":1,"ev":"data","conn":1,"from":"client","text":"a"}` + "\n"
	for _, tc := range []struct {
		name, body string
		records    int
		err        string // "" means a clean EOF
	}{
		{"clean", good + good, 2, ""},
		{"last line without newline", good + strings.TrimSuffix(good, "\n"), 2, ""},
		{"truncated", good + good + good[:20], 2, "x.jsonl:4: truncated line"},
		{"truncated after a newline-less blank", good + "   ", 1, ""},
		{"invalid JSON", good + "{\"t\":1,,}\n" + good, 1, "x.jsonl:3: invalid JSON: "},
		{"binary junk", good + "\x00\x01\x02\n", 1, "x.jsonl:3: invalid JSON: "},
		{"no ev", good + `{"t":1,"conn":1}` + "\n", 1, `x.jsonl:3: record has no "ev"`},
		{"no t", `{"ev":"open","conn":1}` + "\n", 0, `x.jsonl:2: open record has no "t"`},
		{"no conn", `{"t":1,"ev":"close"}` + "\n", 0, `x.jsonl:2: close record has no "conn"`},
		{"no from", `{"t":1,"ev":"data","conn":1,"text":"a"}` + "\n", 0, `x.jsonl:2: data record has no "from"`},
		{"bad from", `{"t":1,"ev":"data","conn":1,"from":"relay","text":"a"}` + "\n", 0, `x.jsonl:2: "from" is "relay", want client or server`},
		{"no payload", `{"t":1,"ev":"data","conn":1,"from":"client"}` + "\n", 0, `x.jsonl:2: data record has neither "text" nor "b64"`},
		{"both payloads", `{"t":1,"ev":"data","conn":1,"from":"client","text":"","b64":""}` + "\n", 0, `x.jsonl:2: data record has both "text" and "b64"`},
		{"bad b64", `{"t":1,"ev":"data","conn":1,"from":"client","b64":"!!"}` + "\n", 0, `x.jsonl:2: b64: illegal base64`},
		{"bad t", `{"t":"soon","ev":"data","conn":1,"from":"client","text":""}` + "\n", 0, `x.jsonl:2: "t" is a string, want a number of seconds`},
		{"t as a string", good + `{"t":"1","ev":"data","conn":1,"from":"client","text":""}` + "\n", 1, `x.jsonl:3: "t" is a string, want a number of seconds`},
		{"conn as a string", `{"t":1,"ev":"data","conn":"1","from":"client","text":""}` + "\n", 0, `x.jsonl:2: "conn" is a string, want a whole number`},
		{"negative conn", `{"t":1,"ev":"data","conn":-1,"from":"client","text":""}` + "\n", 0, `x.jsonl:2: "conn" is the number -1, want a whole number`},
		{"text as a number", `{"t":1,"ev":"data","conn":1,"from":"client","text":5}` + "\n", 0, `x.jsonl:2: "text" is a number, want a string`},
		{"from as an array", `{"t":1,"ev":"data","conn":1,"from":["client"],"text":""}` + "\n", 0, `x.jsonl:2: "from" is an array, want a string`},
		{"error as an object", `{"t":1,"ev":"close","conn":1,"error":{}}` + "\n", 0, `x.jsonl:2: "error" is an object, want a string`},
		{"both wires", `{"t":1,"ev":"data","conn":1,"from":"client","text":"","wire":"","wire_b64":""}` + "\n", 0, `x.jsonl:2: data record has both "wire" and "wire_b64"`},
		{"bad role", `{"t":1,"ev":"open","conn":1,"role":"boss"}` + "\n", 0, `x.jsonl:2: role: unknown side "boss"`},
		{"unknown kind and fields skipped", `{"t":1,"ev":"mark","conn":1}` + "\n" + `{"t":1,"ev":"data","conn":1,"from":"client","text":"a","new":[1,2]}` + "\n", 1, ""},
		{"blank lines skipped", "\n  \n" + good, 1, ""},
		{"long line", good + `{"t":1,"x":"` + strings.Repeat("a", 3<<20) + "\"}\n", 1, "x.jsonl:3: line longer than 2 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := readAll(t, []byte(head+tc.body), "x.jsonl")
			if len(recs) != tc.records {
				t.Errorf("%d records before the error, want %d", len(recs), tc.records)
			}
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
				t.Errorf("error %v, want %s...", err, tc.err)
			case tc.err != "":
				var le *LineError
				if !errors.As(err, &le) || le.File != "x.jsonl" {
					t.Errorf("error %v is not a LineError", err)
				}
			}
			if strings.HasPrefix(tc.name, "truncated") && tc.err != "" && !errors.Is(err, ErrTruncated) {
				t.Errorf("%v is not ErrTruncated", err)
			}
		})
	}
}

func TestHeaderErrors(t *testing.T) {
	for _, tc := range []struct{ name, file, err string }{
		{"newer", `{"wirecat":"session","version":3}` + "\n", "session file x.jsonl is version 3; this wirecat reads version 2 — upgrade wirecat"},
		{"zero", `{"wirecat":"session","version":0}` + "\n", `x.jsonl: session version "0" is not a positive whole number`},
		{"fraction", `{"wirecat":"session","version":1.5}` + "\n", `x.jsonl: session version "1.5" is not a positive whole number`},
		{"empty", "", "x.jsonl: not a wirecat session (the file is empty)"},
		{"other JSON", `{"t":1,"ev":"data"}` + "\n", "x.jsonl: not a wirecat session (first line is not a session header)"},
		{"text", "hello world\n", "x.jsonl: not a wirecat session (first line is not a session header)"},
		{"other tool", `{"wirecat":"config","version":1}` + "\n", "x.jsonl: not a wirecat session (first line is not a session header)"},
		{"bad start", `{"wirecat":"session","version":1,"start":"yesterday"}` + "\n", `x.jsonl:1: header start "yesterday" is not an RFC 3339 time`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tc.file), "x.jsonl")
			if err == nil || err.Error() != tc.err {
				t.Fatalf("error %v, want %s", err, tc.err)
			}
			switch tc.name {
			case "newer", "zero", "fraction":
				if !errors.Is(err, ErrVersion) {
					t.Errorf("not ErrVersion")
				}
			case "empty", "other JSON", "text", "other tool":
				if !errors.Is(err, ErrNotSession) {
					t.Errorf("not ErrNotSession")
				}
			}
		})
	}
	// A header that only lacks its newline is whole.
	r, err := NewReader(strings.NewReader(`{"wirecat":"session","version":1}`), "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestCreateOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.jsonl")
	w, err := Create(path, Header{Command: "listen tcp://:5000"})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(w.Start()) > time.Minute {
		t.Errorf("zero start not set to now: %v", w.Start())
	}
	if err := w.Emit(&event.Event{Kind: event.Data, Conn: 1, From: event.Client, Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := w.Emit(&event.Event{Kind: event.Data, Conn: 1, From: event.Client}); err == nil {
		t.Error("emit after close succeeded")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.Next()
	if err != nil || string(rec.Data) != "x" || rec.T < 0 || rec.T > time.Minute {
		t.Fatalf("%+v %v", rec, err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Create(filepath.Join(t.TempDir(), "no", "dir.jsonl"), Header{}); err == nil || !strings.HasPrefix(err.Error(), "record: ") {
		t.Errorf("create in a missing directory: %v", err)
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return len(p), nil
}

func TestWriteErrorSticks(t *testing.T) {
	if _, err := NewWriter(&failWriter{}, Header{}); err == nil || err.Error() != "write session header: disk full" {
		t.Errorf("header: %v", err)
	}
	w, err := NewWriter(&failWriter{n: 1}, Header{})
	if err != nil {
		t.Fatal(err)
	}
	e := &event.Event{Kind: event.Close, Conn: 1}
	for range 2 {
		if err := w.Emit(e); err == nil || err.Error() != "record: disk full" {
			t.Errorf("emit: %v", err)
		}
	}

	// Batch mode reports the failure on a later Emit, Flush and Close.
	w, err = NewWriter(&failWriter{n: 1}, Header{})
	if err != nil {
		t.Fatal(err)
	}
	w.Batch()
	w.Emit(e)
	if err := w.Flush(); err == nil || err.Error() != "record: disk full" {
		t.Errorf("flush: %v", err)
	}
	if err := w.Emit(e); err == nil || err.Error() != "record: disk full" {
		t.Errorf("emit after failure: %v", err)
	}
	if err := w.Close(); err == nil || err.Error() != "record: disk full" {
		t.Errorf("close: %v", err)
	}
}

// TestBatch checks Batch mode writes everything, in order, by Flush and Close.
func TestBatch(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	w.Batch()
	w.Batch()                               // twice is harmless
	big := bytes.Repeat([]byte("x"), 1<<20) // pass maxPending to exercise the wait
	for i := range 20 {
		p := fmt.Appendf(nil, "%d", i)
		if i%4 == 0 {
			p = append(p, big...)
		}
		if err := w.Emit(&event.Event{Kind: event.Data, Time: t0, Conn: 1, From: event.Client, Data: p}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := readAll(t, buf.Bytes(), "b.jsonl")
	if err != nil || len(recs) != 20 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	for i, r := range recs {
		if !bytes.HasPrefix(r.Data, fmt.Appendf(nil, "%d", i)) {
			t.Fatalf("record %d: %.10q", i, r.Data)
		}
	}
	if err := w.Emit(&event.Event{Kind: event.Close}); err == nil {
		t.Error("emit after close succeeded")
	}
}

// TestConcurrentEmit checks lines never interleave under concurrent Emit.
func TestConcurrentEmit(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) { testConcurrentEmit(t, batch) })
	}
}

func testConcurrentEmit(t *testing.T, batch bool) {
	path := filepath.Join(t.TempDir(), "c.jsonl")
	w, err := Create(path, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	if batch {
		w.Batch()
	}
	const goroutines, each = 8, 300
	done := make(chan struct{})
	for g := range goroutines {
		go func() {
			defer func() { done <- struct{}{} }()
			msg := bytes.Repeat([]byte{byte('a' + g)}, 100+g*1000)
			for range each {
				w.Emit(&event.Event{Kind: event.Data, Conn: uint64(g + 1), From: event.Client, Data: msg, Time: t0})
			}
		}()
	}
	for range goroutines {
		<-done
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		g := int(rec.Conn - 1)
		if len(rec.Data) != 100+g*1000 || rec.Data[0] != byte('a'+g) {
			t.Fatalf("conn %d: %d bytes", rec.Conn, len(rec.Data))
		}
		n++
	}
	if n != goroutines*each {
		t.Fatalf("%d records", n)
	}
}

const killChildEnv = "WIRECAT_SESSION_KILL_CHILD"

// TestKillChild is the child of TestKill9: it records until it is killed.
func TestKillChild(t *testing.T) {
	path := os.Getenv(killChildEnv)
	if path == "" {
		t.Skip("runs as the child of TestKill9")
	}
	w, err := Create(path, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(killChildEnv+"_BATCH") != "" {
		w.Batch()
	}
	w.Emit(&event.Event{Kind: event.Open, Conn: 1, Transport: "tcp", Role: event.Client, Local: "127.0.0.1:1", Remote: "127.0.0.1:2"})
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<12) // 64 KiB lines widen the window for a torn write
	for i := 0; ; i++ {
		p := fmt.Appendf(nil, "%d ", i)
		if i%3 == 0 {
			p = append(p, 0xff)
		}
		if i%50 == 0 {
			p = append(p, big...)
		}
		w.Emit(&event.Event{Kind: event.Data, Conn: 1, From: event.Client, Data: p})
	}
}

func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	for round := range 4 {
		path := filepath.Join(t.TempDir(), "k.jsonl")
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), killChildEnv+"="+path)
		if round%2 == 1 {
			cmd.Env = append(cmd.Env, killChildEnv+"_BATCH=1")
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if fi, err := os.Stat(path); err == nil && fi.Size() > int64(1<<20*(round+1)) {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatal("the child wrote nothing")
			}
			time.Sleep(5 * time.Millisecond)
		}
		cmd.Process.Kill() // SIGKILL
		cmd.Wait()

		r, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("after %d records: %v", n, err)
				}
				t.Logf("last line cut: %v", err)
				break
			}
			if rec.Kind == event.Open {
				continue
			}
			var i int
			if _, err := fmt.Sscanf(string(rec.Data), "%d ", &i); err != nil || i != n {
				t.Fatalf("record %d carries %q", n, rec.Data[:min(len(rec.Data), 20)])
			}
			n++
		}
		r.Close()
		t.Logf("round %d: %d records survived", round, n)
		if n < 100 {
			t.Fatalf("only %d records", n)
		}
	}
}

// TestConstantMemory streams a 200 MB session through a pipe and checks the
// reader's heap stays small.
func TestConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 200 MB")
	}
	const total = 200 << 20
	pr, pw := io.Pipe()
	go func() {
		w, err := NewWriter(pw, testHeader())
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		text := bytes.Repeat([]byte("the quick brown fox jumps\n"), 4096/26)
		bin := make([]byte, 3000)
		for i := range bin {
			bin[i] = byte(i)
		}
		written := 0
		for i := 0; written < total; i++ {
			p := text
			if i%4 == 0 {
				p = bin
			}
			w.Emit(&event.Event{Kind: event.Data, Time: t0.Add(time.Duration(i) * time.Millisecond), Conn: 1, From: event.Client, Data: p})
			written += len(p) + 60
		}
		pw.Close()
	}()
	r, err := NewReader(pr, "big.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	var peak uint64
	var bytesRead int
	for n := 0; ; n++ {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		bytesRead += len(rec.Data)
		if n%2000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	t.Logf("%d MB of payload read, peak heap in use %.1f MiB", bytesRead>>20, float64(peak)/(1<<20))
	if bytesRead < total*9/10 {
		t.Fatalf("read %d bytes", bytesRead)
	}
	if peak > 32<<20 {
		t.Fatalf("heap in use reached %.1f MiB", float64(peak)/(1<<20))
	}
}

func benchEmit(b *testing.B, size int, w io.Writer, batch bool) {
	sw, err := NewWriter(w, testHeader())
	if err != nil {
		b.Fatal(err)
	}
	if batch {
		sw.Batch()
		defer sw.Close()
	}
	p := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz01234\n"), size/32)
	e := &event.Event{Kind: event.Data, Time: t0.Add(1234567 * time.Microsecond), Conn: 1, From: event.Server, Data: p}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := sw.Emit(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEmit(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprintf("encode/%d", size), func(b *testing.B) { benchEmit(b, size, io.Discard, false) })
		b.Run(fmt.Sprintf("file/%d", size), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "bench.jsonl"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			benchEmit(b, size, f, false)
		})
		b.Run(fmt.Sprintf("file-batch/%d", size), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "bench.jsonl"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			benchEmit(b, size, f, true)
		})
	}
	b.Run("file/4096-binary", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "bench.jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		sw, _ := NewWriter(f, testHeader())
		p := make([]byte, 4096)
		for i := range p {
			p[i] = byte(i)
		}
		e := &event.Event{Kind: event.Data, Time: t0, Conn: 1, From: event.Server, Data: p}
		b.SetBytes(4096)
		b.ReportAllocs()
		for b.Loop() {
			sw.Emit(e)
		}
	})
}
