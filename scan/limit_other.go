//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package scan

func fitLimit(parallel int) int { return parallel }
