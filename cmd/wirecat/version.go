package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at link time: -X main.version=... -X main.commit=... -X main.date=...
var (
	version = ""
	commit  = ""
	date    = ""
)

// VersionCmd is `wirecat version`.
type VersionCmd struct{}

func (c *VersionCmd) Run(app *App) error {
	printVersion(app.Stdout)
	return nil
}

func printVersion(w io.Writer) {
	v, cm, d := buildInfo()
	fmt.Fprintf(w, "wirecat %s\ncommit: %s\nbuilt: %s\ngo: %s %s/%s\n", v, cm, d, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildInfo falls back to what the Go toolchain recorded when the linker
// was not told.
func buildInfo() (v, cm, d string) {
	v, cm, d = version, commit, date
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && cm == "":
				cm = s.Value
			case s.Key == "vcs.time" && d == "":
				d = s.Value
			case s.Key == "vcs.modified" && s.Value == "true" && cm != "" && commit == "":
				cm += "-dirty"
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	if cm == "" {
		cm = "unknown"
	}
	if d == "" {
		d = "unknown"
	}
	return v, cm, d
}
