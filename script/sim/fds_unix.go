//go:build unix

package sim

import (
	"fmt"
	"os"
	"syscall"
)

// fdReserve is what a fleet leaves to the rest of the process: stdio, the
// poller, a recording, the runtime.
const fdReserve = 32

// DescriptorWarning says, before a fleet starts, when it cannot fit in the
// process's descriptor limit; "" when it fits. Each device's connection is
// a descriptor, and one more when it connects to the built-in sink, whose
// side of it is in this process too. (The Go runtime has already raised the
// soft limit to the hard one at start.) Devices past the limit fail to
// connect one by one with "too many open files"; this says why once, first.
func DescriptorWarning(devices int, builtinSink bool) string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return ""
	}
	open := fdReserve
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		open += len(ents)
	}
	return descriptorWarning(devices, builtinSink, lim.Cur, open)
}

func descriptorWarning(devices int, builtinSink bool, limit uint64, open int) string {
	per, what := 1, "one descriptor a device"
	if builtinSink {
		per, what = 2, "two descriptors a device (its connection and the built-in sink's end of it)"
	}
	need := uint64(devices*per + open)
	if need <= limit {
		return ""
	}
	fit := 0
	if limit > uint64(open) {
		fit = int(limit-uint64(open)) / per
	}
	return fmt.Sprintf("%d devices need %s, %d in all, and this process may open %d (ulimit -n): about %d devices "+
		"will connect, the rest fail with \"too many open files\"; raise the hard limit (ulimit -Hn) or split the fleet "+
		"over several processes", devices, what, need, limit, fit)
}
