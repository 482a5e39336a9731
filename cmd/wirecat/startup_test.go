package main

import (
	"io"
	"testing"
)

// BenchmarkParse measures building the CLI model and parsing a command:
// part of every start-up.
func BenchmarkParse(b *testing.B) {
	app := &App{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	for b.Loop() {
		run(app, []string{"version"})
	}
}
