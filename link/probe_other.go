//go:build !linux

package link

// unixListening cannot tell without connecting here: the caller probes by
// connecting.
func unixListening(path string) (alive, known bool) { return false, false }
