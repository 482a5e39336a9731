//go:build linux || darwin || freebsd || netbsd || openbsd

package scan

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// When wait fails on the third flight (here getsockopt on a descriptor that
// is not a socket), w.flying must hold exactly the descriptors not yet
// closed, once each: closeAll must not close one that wait closed already.
func TestWaitErrorLeavesNoStaleFlight(t *testing.T) {
	var fds []int
	var bad [2]int
	for k := range 5 {
		if k == 2 { // the one whose answer fails: a pipe, ready to write
			if err := unix.Pipe(bad[:]); err != nil {
				t.Fatal(err)
			}
			defer unix.Close(bad[0])
			fds = append(fds, bad[1])
			continue
		}
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(pair[1])
		fds = append(fds, pair[0]) // writable, no error: an open port
	}
	w := &worker{max: 5}
	for k, fd := range fds {
		w.flying = append(w.flying, flight{fd: fd, i: k, deadline: time.Now().Add(time.Minute)})
	}
	tl := &tally{ports: make(Ports, 5), states: make([]State, 5), report: func(Result) {}}
	if err := w.wait(context.Background(), tl); err == nil {
		t.Fatal("wait: no error for a descriptor that is not a socket")
	}
	seen := map[int]bool{}
	for _, f := range w.flying {
		if seen[f.fd] {
			t.Fatalf("descriptor %d twice in flight: %v", f.fd, w.flying)
		}
		seen[f.fd] = true
		if _, err := unix.FcntlInt(uintptr(f.fd), unix.F_GETFD, 0); err != nil {
			t.Fatalf("descriptor %d still in flight after wait closed it", f.fd)
		}
	}
	for k, fd := range fds {
		if want := k >= 2; seen[fd] != want {
			t.Fatalf("flight %d (fd %d) in flight: %v, want %v", k, fd, seen[fd], want)
		}
	}
	w.closeAll()
}
