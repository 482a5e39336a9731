package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// BenchmarkParse measures building the CLI model of one command and parsing
// its arguments: part of every start-up but `version`'s (which skips it).
func BenchmarkParse(b *testing.B) {
	args := []string{"send", "127.0.0.1:9", "x", "--wait", "0"}
	for b.Loop() {
		cli, _ := cliFor(args)
		parser, err := newParser(cli, kong.Name("wirecat"), kong.Writers(io.Discard, io.Discard),
			kong.Exit(func(int) {}), kong.ConfigureHelp(kong.HelpOptions{Compact: true, WrapUpperBound: 80}))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := parser.Parse(args); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNewParserSameModel checks that newParser, which fills helpVars in
// itself and keeps kong's interpolation off most strings, builds the same
// model as kong.New with kong.Vars(helpVars): every help text, placeholder,
// default and enum of every command.
func TestNewParserSameModel(t *testing.T) {
	texts := func(k *kong.Kong) []string {
		var out []string
		err := kong.Visit(k.Model, func(v kong.Visitable, next kong.Next) error {
			switch v := v.(type) {
			case *kong.Node:
				out = append(out, fmt.Sprintf("node %s help=%q", v.Path(), v.Help))
			case *kong.Flag:
				out = append(out, fmt.Sprintf("flag %s placeholder=%q", v.Name, v.PlaceHolder))
			case *kong.Value:
				out = append(out, fmt.Sprintf("value %s help=%q default=%q enum=%q", v.Name, v.Help, v.Default, v.Enum))
			}
			return next(nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want, err := kong.New(&CLI{}, exitCodes, kong.Name("wirecat"), kong.Vars(helpVars))
	if err != nil {
		t.Fatal(err)
	}
	got, err := newParser(&CLI{}, exitCodes, kong.Name("wirecat"))
	if err != nil {
		t.Fatal(err)
	}
	w, g := texts(want), texts(got)
	if len(w) < 100 {
		t.Fatalf("only %d strings in the model: the walk is wrong", len(w))
	}
	if !slices.Equal(w, g) {
		for i := range min(len(w), len(g)) {
			if w[i] != g[i] {
				t.Fatalf("models differ at %d:\nkong.New:  %s\nnewParser: %s", i, w[i], g[i])
			}
		}
		t.Fatalf("models differ in size: %d against %d", len(w), len(g))
	}
	for _, s := range g {
		if strings.Contains(s, "${") {
			t.Fatalf("variable left in %s", s)
		}
	}
}
