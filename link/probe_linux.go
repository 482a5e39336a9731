package link

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// soAcceptCon is the flag /proc/net/unix shows for a listening socket.
const soAcceptCon = 0x10000

// unixListening says whether a process listens on the stream socket at
// path, from /proc/net/unix, without connecting: a connection would be the
// one peer of a one-shot listener, which would serve it and exit. known is
// false when the table cannot say (no /proc, or a socket bound by a
// relative name that may be this one): the caller probes by connecting.
func unixListening(path string) (alive, known bool) {
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
