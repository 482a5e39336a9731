package main

import (
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// A hook that blocks (a recording written to a FIFO nobody reads) holds up
// a forced exit only for the wait it is given, even when another caller is
// already running the hooks; each hook runs once.
func TestExitHooksBlockedHook(t *testing.T) {
	h := &ExitHooks{}
	var ran atomic.Int32
	block := make(chan struct{})
	defer close(block)
	h.Add(func() { ran.Add(1); <-block })
	h.Add(func() { ran.Add(1) }) // the latest runs first

	first := make(chan bool, 1)
	go func() { first <- h.Run(0, nil) }() // the main goroutine's exit: no limit
	time.Sleep(20 * time.Millisecond)

	begin := time.Now()
	done := make(chan bool, 1)
	go func() { done <- h.Run(100*time.Millisecond, nil) }() // the signal's forced exit
	select {
	case ok := <-done:
		if ok {
			t.Error("Run reported the hooks done while one blocks")
		}
		if took := time.Since(begin); took > 500*time.Millisecond {
			t.Errorf("Run took %v, want about 100ms", took)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run with a wait of 100ms did not return while a hook blocks")
	}

	stop := make(chan os.Signal, 1)
	stop <- os.Interrupt // a second signal ends the wait at once
	if h.Run(time.Hour, stop) {
		t.Error("Run reported the hooks done while one blocks")
	}
	if n := ran.Load(); n != 2 {
		t.Errorf("%d hook runs, want 2 (each once)", n)
	}
	select {
	case <-first:
		t.Error("the unlimited Run returned while a hook blocks")
	default:
	}
}
