//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package main

import "os"

// inBackground: job control is a Unix matter.
func inBackground(*os.File) bool { return false }
