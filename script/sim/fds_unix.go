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
// a descriptor, and one more when it connects to the built-in sink (when
// builtinSink runs), whose end of it is in this process too. (The Go runtime has already raised the
// soft limit to one under the hard one at start.) Devices past the limit fail to
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
	fit := func(per int) int {
		if limit <= uint64(open) {
			return 0
		}
		return int(limit-uint64(open)) / per
	}
	switch {
	case uint64(devices+open) > limit:
		return fmt.Sprintf("%d devices need a descriptor each for their connections, and this process may open %d (ulimit -n): "+
			"about %d devices will connect, the rest fail with \"too many open files\"; raise the hard limit (ulimit -Hn) "+
			"or split the fleet over several processes", devices, limit, fit(1))
	case builtinSink && uint64(2*devices+open) > limit:
		return fmt.Sprintf("%d devices connecting to the built-in sink need two descriptors each (their connection and the sink's end of it), "+
			"and this process may open %d (ulimit -n): about %d devices will connect, the rest fail with \"too many open files\"; "+
			"give --connect a sink in another process (wirecat listen -k)", devices, limit, fit(2))
	}
	return ""
}
