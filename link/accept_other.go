//go:build !unix

package link

import "net"

// shedBacklog cannot reach the listener's descriptor here: the accept loop
// only backs off.
func shedBacklog(ln net.Listener, max int) int { return 0 }

// clientError: accept's errors are not sorted by client here.
func clientError(err error) bool { return false }
