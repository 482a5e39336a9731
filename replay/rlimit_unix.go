//go:build unix

package replay

import (
	"fmt"
	"os"
	"syscall"
)

// descriptorBudget is how many connections may be open at once: the
// descriptor limit less those open now and a reserve for the recording,
// the output and the runtime.
func descriptorBudget() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<20 {
		return 1 << 16
	}
	used := 16
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		used = len(ents)
	}
	return max(int(lim.Cur)-used-32, 1)
}

func nofileText() string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return "the descriptor limit"
	}
	return fmt.Sprintf("ulimit -n %d", lim.Cur)
}
