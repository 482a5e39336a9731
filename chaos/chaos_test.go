// Package chaos attacks the built wirecat binary the way careless users and
// hostile peers do (issue 9), over loopback only: bytes that must not
// change, views that stall, descriptor limits, UDP floods, runaway Lua,
// memory that must come back. Every test is bounded in time; the long soak
// is bench/soak.sh, which runs these with -chaos.soak.
package chaos

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// soak scales the tests up to the full targets (minutes, not seconds).
var soak = flag.Bool("chaos.soak", false, "run at the issue's full sizes and print figures")

func TestMain(m *testing.M) {
	flag.Parse()
	cleanup, err := e2e.Build("github.com/wirecat-dev/wirecat/cmd/wirecat", raceEnabled)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// figure logs a measured figure; the soak script collects these lines.
func figure(t testing.TB, name string, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURE %s: %s", name, fmt.Sprintf(format, args...))
}
