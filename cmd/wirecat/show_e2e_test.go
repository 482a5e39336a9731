package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// show escapes every recorded string, not only payloads: a session file is
// data from anywhere, and an ESC sequence in remote or a close error must
// not reach the terminal (issue 9, item 7).
func TestShowEscapesEveryField(t *testing.T) {
	file := filepath.Join(t.TempDir(), "esc.jsonl")
	os.WriteFile(file, []byte(`{"wirecat":"session","version":2,"command":"listen \u001b[2J","frame":"line","start":"2025-03-14T15:09:26Z"}`+"\n"+
		`{"t":1,"ev":"open","conn":1,"transport":"unix\u001b[31m","role":"server","local":"/tmp/a\u001b]0;pwned\u0007","remote":"\u001b[2Jevil"}`+"\n"+
		`{"t":2,"ev":"data","conn":1,"from":"client","text":"hi"}`+"\n"+
		`{"t":3,"ev":"error","conn":1,"error":"bad \u001b[5m thing"}`+"\n"+
		`{"t":4,"ev":"close","conn":1,"by":"client","error":"reset\u001b[0m\nfake line"}`+"\n"), 0o644)
	for _, mode := range []string{"text", "hex", "json"} {
		out, stderr, code := runWirecat(t, "", 10*time.Second, "show", file, "-o", mode)
		if code != 0 {
			t.Fatalf("-o %s: exit %d: %s", mode, code, stderr)
		}
		if strings.ContainsAny(out, "\x1b\x07") {
			t.Errorf("-o %s prints control characters:\n%q", mode, out)
		}
		if mode == "text" && (!strings.Contains(out, `\x1b[2Jevil`) || !strings.Contains(out, `reset\x1b[0m\nfake line`)) {
			t.Errorf("-o text does not show the escaped fields:\n%s", out)
		}
	}
}
