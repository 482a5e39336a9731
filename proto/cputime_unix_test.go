//go:build unix

package proto

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time. Benchmarks report MB/s
// per CPU second beside wall-clock MB/s, which a busy machine distorts.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
