//go:build linux || darwin || freebsd || netbsd || openbsd

package scan

import "golang.org/x/sys/unix"

// reserve is how many descriptors a scan leaves to the rest of the process
// (stdio, the poller, the runtime) when the limit is lower than Parallel.
const reserve = 16

// fitLimit lowers parallel to what the descriptor limit leaves room for:
// under `ulimit -n 32` a scan is slower, not a failure.
func fitLimit(parallel int) int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || uint64(rl.Cur) > uint64(parallel+reserve) {
		return parallel
	}
	return max(1, int(rl.Cur)-reserve)
}
