// Package diag writes wirecat's diagnostics to stderr: one voice, one
// prefix, so stdout stays data only.
package diag

import (
	"fmt"
	"io"
	"sync"
)

// Log prints notices (unless Quiet) and details (only when Verbose).
type Log struct {
	mu      sync.Mutex
	W       io.Writer
	Verbose bool
	Quiet   bool
}

func (l *Log) print(format string, args []any) {
	if l == nil || l.W == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.W, "wirecat: "+format+"\n", args...)
}

// Notef prints something the user should see unless they asked for quiet.
func (l *Log) Notef(format string, args ...any) {
	if l != nil && !l.Quiet {
		l.print(format, args)
	}
}

// Debugf prints connection events and timings with -v.
func (l *Log) Debugf(format string, args ...any) {
	if l != nil && l.Verbose {
		l.print(format, args)
	}
}

// Warnf prints a warning; -q silences it.
func (l *Log) Warnf(format string, args ...any) {
	if l != nil && !l.Quiet {
		l.print("warning: "+format, args)
	}
}

// Errorf prints an error; nothing silences errors.
func (l *Log) Errorf(format string, args ...any) {
	l.print("error: "+format, args)
}
