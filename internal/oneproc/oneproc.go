// Package oneproc runs a program's start-up with GOMAXPROCS=1 and gives it
// the runtime's default back when the real work begins (Done).
//
// Why: a start-up is one goroutine's serial work (package initialisers,
// building the command-line model), yet with a second P idle every
// goroutine the runtime or a package starts wakes a thread to look for
// work, which finds little and goes back to sleep: futex calls and context
// switches that cost a short-lived wirecat 0.1–0.3 ms on a 2-core VM
// (bench/README.md, Start-up). With one P the same goroutines simply run in
// turn.
//
// The main package imports it and calls Done when the command starts; the
// lowering is in init, which runs among the first package initialisers
// (this package imports only runtime and syscall), before the heavy ones.
// A GOMAXPROCS environment variable is left alone. Until Done,
// runtime.GOMAXPROCS(0) says 1: size worker pools when a command runs (as
// scan does), not in a package initialiser or a package variable.
package oneproc

import (
	"runtime"
	"syscall"
)

// lowered is set when init lowered GOMAXPROCS, so Done knows to restore it.
var lowered bool

func init() {
	if _, set := syscall.Getenv("GOMAXPROCS"); set {
		return // the user's choice stands, start-up included
	}
	runtime.GOMAXPROCS(1)
	lowered = true
}

// Done gives the program the GOMAXPROCS the runtime would have chosen (and
// its automatic updates when the CPU limit changes); once init lowered it,
// the first call does that and later calls do nothing. Call it before any
// work that can use more than one core.
func Done() {
	if !lowered {
		return
	}
	lowered = false
	runtime.SetDefaultGOMAXPROCS()
}
