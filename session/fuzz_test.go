package session

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
)

// FuzzReader feeds arbitrary files to the Reader: it must never panic,
// every failure must be one of its documented errors, and whatever it reads
// must survive a round trip through the Writer.
func FuzzReader(f *testing.F) {
	f.Add([]byte(`{"wirecat":"session","version":1}` + "\n"))
	f.Add(record(f, sample()))
	f.Add([]byte(`{"wirecat":"session","version":1,"start":"2025-01-01T00:00:00Z"}` + "\n" +
		`{"t":1e-3,"ev":"data","conn":1,"from":"server","b64":"AAE="}` + "\n" + `{"t":2,"ev":"close","conn":1,"by":"cli`))
	f.Fuzz(func(t *testing.T, file []byte) {
		r, err := NewReader(bytes.NewReader(file), "f.jsonl")
		if err != nil {
			if !errors.Is(err, ErrNotSession) && !errors.Is(err, ErrVersion) && !isLineError(err) {
				t.Fatalf("header error of an unknown kind: %v", err)
			}
			return
		}
		var recs []Record
		for len(recs) < 1000 {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !isLineError(err) {
					t.Fatalf("error of an unknown kind: %v", err)
				}
				break
			}
			if rec.Line < 2 || rec.Kind < event.Open || rec.Kind > event.Error {
				t.Fatalf("bad record %+v", rec)
			}
			recs = append(recs, rec)
		}

		// Round trip what was read.
		h := r.Header()
		if h.Start.IsZero() {
			h.Start = t0 // a zero start would make the Writer use now
		}
		start := h.Start
		var buf bytes.Buffer
		w, err := NewWriter(&buf, h)
		if err != nil {
			t.Fatal(err)
		}
		var kept []Record
		for _, rec := range recs {
			if rec.T > 100*365*24*time.Hour || rec.T < -100*365*24*time.Hour {
				continue // beyond what time.Time arithmetic keeps exact
			}
			if err := w.Emit(rec.Event(start)); err != nil {
				t.Fatal(err)
			}
			kept = append(kept, rec)
		}
		back, err := readAll(t, buf.Bytes(), "again.jsonl")
		if err != nil {
			t.Fatalf("reading back what the Writer wrote: %v\n%s", err, buf.Bytes())
		}
		if len(back) != len(kept) {
			t.Fatalf("%d records back, wrote %d", len(back), len(kept))
		}
		for i, a := range kept {
			b := back[i]
			if a.Kind != b.Kind || a.T != b.T || a.Conn != b.Conn || !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("record %d: %+v became %+v", i, a, b)
			}
			if a.Kind == event.Data && a.From != b.From || a.Kind == event.Close && (a.From != b.From || a.Err != b.Err) {
				t.Fatalf("record %d: %+v became %+v", i, a, b)
			}
			if a.Kind == event.Open && (a.Transport != b.Transport || a.Role != b.Role || a.Local != b.Local || a.Remote != b.Remote) {
				t.Fatalf("record %d: %+v became %+v", i, a, b)
			}
		}
	})
}

func isLineError(err error) bool {
	var le *LineError
	return errors.As(err, &le) && le.File == "f.jsonl" && le.Line >= 1
}
