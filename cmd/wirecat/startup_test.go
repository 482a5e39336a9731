package main

import (
	"io"
	"testing"

	"github.com/alecthomas/kong"
)

// BenchmarkParse measures building the CLI model of one command and parsing
// its arguments: part of every start-up but `version`'s (which skips it).
func BenchmarkParse(b *testing.B) {
	args := []string{"send", "127.0.0.1:9", "x", "--wait", "0"}
	for b.Loop() {
		cli, _ := cliFor(args)
		parser, err := kong.New(cli, kong.Name("wirecat"), kong.Vars(helpVars), kong.Writers(io.Discard, io.Discard),
			kong.Exit(func(int) {}), kong.ConfigureHelp(kong.HelpOptions{Compact: true, WrapUpperBound: 80}))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := parser.Parse(args); err != nil {
			b.Fatal(err)
		}
	}
}
