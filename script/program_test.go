package script

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wirecat-dev/wirecat/proto"
)

func TestFrameDeclared(t *testing.T) {
	for _, c := range []struct{ src, frame, err string }{
		{"FRAME = \"delim:,\"\nprint(1)", "delim:,", ""},
		{"-- none\nprint(1)", "", ""},
		{"local FRAME = 'line'", "", ""},                           // a local is the script's own business
		{"function f() FRAME = x end\nFRAME = 'slip'", "slip", ""}, // only the top level counts
		{"\n\nFRAME = args.frame", "", "test.lua:3: FRAME must be a framing spec in quotes"},
		{"FRAME, X = 'line'", "", "test.lua:1: FRAME must be"},
	} {
		p, err := Compile("test.lua", []byte(c.src))
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrSyntax) {
				t.Errorf("%q: err %v, want %q", c.src, err, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.src, err)
		case p.Frame != c.frame:
			t.Errorf("%q: FRAME %q, want %q", c.src, p.Frame, c.frame)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "dev.lua")
	os.WriteFile(path, []byte(`FRAME = "lua:framer.lua"`), 0o644)
	p, err := Load(path)
	if err != nil || p.Frame != "lua:"+filepath.Join(dir, "framer.lua") || p.FrameLine != 1 {
		t.Errorf("Load: %+v %v", p, err)
	}
}

// A framer script that cannot be loaded is a bad framing spec (a usage
// error on the command line) that names the file.
func TestLoadFuncBadSpec(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.lua")
	os.WriteFile(bad, []byte("return {decode = \n"), 0o644)
	for _, c := range []struct {
		spec, want string
		cause      error
	}{
		{"lua:" + filepath.Join(dir, "missing.lua"), "missing.lua", os.ErrNotExist},
		{"lua:" + bad, "bad.lua:1:", ErrSyntax},
	} {
		_, err := proto.Parse(c.spec, LoadFunc)
		if !errors.Is(err, proto.ErrBadSpec) || !errors.Is(err, c.cause) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.spec, err)
		}
	}
}
