package script

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// syncBuf is a bytes.Buffer safe for the devices' goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recorder is an event.Sink keeping copies of every event.
type recorder struct {
	mu sync.Mutex
	ev []event.Event
}

func (r *recorder) Emit(e *event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := *e
	c.Data = bytes.Clone(e.Data)
	r.ev = append(r.ev, c)
	return nil
}

type result struct {
	out, errOut string
	err         error
	elapsed     time.Duration
	stats       *Stats
}

// run runs src as device 1 of 1 with a deadline.
func run(t *testing.T, src string, timeout time.Duration, env *Env) result {
	t.Helper()
	p, err := Compile("test.lua", []byte(src))
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if env == nil {
		env = &Env{}
	}
	var out, errOut syncBuf
	env.Stdout, env.Stderr = &out, &errOut
	if env.Count == 0 {
		env.Count = 1
	}
	if env.Stats == nil {
		env.Stats = NewStats(nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err = p.Run(ctx, 1, env)
	return result{out.String(), errOut.String(), err, time.Since(start), env.Stats}
}

func needTool(t *testing.T, name string) string { t.Helper(); return e2e.NeedPath(t, name) }

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }

func contextTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
