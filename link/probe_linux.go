package link

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// soAcceptCon is the flag /proc/net/unix shows for a listening socket.
const soAcceptCon = 0x10000

// unixListening says whether a process listens on the stream socket at
// path without connecting to it: a connection would be the one peer of a
// one-shot listener, which would serve it and exit. It looks in
// /proc/net/unix first. That table lists only this network namespace's
// sockets, so a path it does not list may still be live (a listener in a
// container sharing the directory): boundProbe then asks the kernel, still
// without a connection. known is false when neither can say: the caller
// probes by connecting.
func unixListening(path string) (alive, known bool) {
	if alive, known = listedListening(path); alive {
		return true, true
	}
	return boundProbe(path)
}

// boundProbe says whether a socket is bound at path, by connecting a
// datagram socket to it: the kernel finds the socket behind the file, if
// any, whatever its namespace, and refuses a stream one with EPROTOTYPE
// (alive, and not connected: no listener ever sees it) or a file with no
// socket behind it with ECONNREFUSED (stale). A datagram socket behind it
// accepts the connection, which its owner does not see either.
func boundProbe(path string) (alive, known bool) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, false
	}
	defer unix.Close(fd)
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	switch {
	case err == nil, errors.Is(err, unix.EPROTOTYPE):
		return true, true
	case errors.Is(err, unix.ECONNREFUSED):
		return false, true
	}
	return false, false
}

// listedListening looks for a listener bound at path in /proc/net/unix.
// known is false when the table cannot say (no /proc, or a socket bound by
// a relative name that may be this one).
func listedListening(path string) (alive, known bool) {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return false, false
	}
	defer f.Close()
	abs, err := filepath.Abs(path)
	if err != nil {
		return false, false
	}
	base := filepath.Base(abs)
	known = true
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		name := strings.Join(fields[7:], " ")
		var flags uint64
		for _, c := range fields[3] {
			flags = flags<<4 | uint64(hexDigit(c))
		}
		if flags&soAcceptCon == 0 {
			continue
		}
		switch {
		case name == abs || name == path:
			return true, true
		case !strings.HasPrefix(name, "/") && filepath.Base(name) == base:
			known = false // bound by a relative name: maybe this socket
		}
	}
	if sc.Err() != nil {
		return false, false
	}
	return false, known
}

func hexDigit(c rune) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return 0
}
