package main

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
)

// show and replay set their soft memory limit above replay's designed
// bounds (48 MiB), and leave a user's GOMEMLIMIT alone.
func TestStreamMemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	if streamMemory <= (16+32)<<20 {
		t.Errorf("streamMemory %d MiB is under replay's designed 48 MiB", streamMemory>>20)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "1GiB")
	limitStreamMemory()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("GOMEMLIMIT set: limit changed to %d", got)
	}
	os.Unsetenv("GOMEMLIMIT") // t.Setenv puts it back after the test
	limitStreamMemory()
	if got := debug.SetMemoryLimit(-1); got != streamMemory {
		t.Errorf("limit %d, want %d", got, streamMemory)
	}
}
