//go:build linux || darwin || freebsd || netbsd || openbsd

package main

import (
	"os"
	"syscall"
	"unsafe"
)

// inBackground reports whether f is a terminal whose foreground process
// group is not ours: `wirecat listen -k :5000 > log &` in an interactive
// shell. Reading it would stop the process with SIGTTIN (and leave its
// peers hanging), so such a stdin counts as --recv-only, like /dev/null.
func inBackground(f *os.File) bool {
	var fg int32
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(syscall.TIOCGPGRP), uintptr(unsafe.Pointer(&fg)))
	if errno != 0 {
		return false // not a terminal, or no controlling terminal: nothing to fear
	}
	return int(fg) != syscall.Getpgrp()
}
