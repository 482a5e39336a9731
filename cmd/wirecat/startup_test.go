package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/wirecat-dev/wirecat/internal/oneproc"
)

// The tests run with the runtime's default GOMAXPROCS, as a command does
// (main's start-up runs on one P until the command runs: internal/oneproc).
func init() { oneproc.Done() }

// BenchmarkParse measures building the CLI model of one command and parsing
// its arguments: part of every start-up but `version`'s (which skips it).
func BenchmarkParse(b *testing.B) {
	args := []string{"send", "127.0.0.1:9", "x", "--wait", "0"}
	for b.Loop() {
		cli, _ := cliFor(args)
		parser, err := newParser(cli, kong.Name("wirecat"), kong.Writers(io.Discard, io.Discard),
			kong.Exit(func(int) {}), kong.ConfigureHelp(kong.HelpOptions{Compact: true, WrapUpperBound: 80}))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := parser.Parse(args); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNewParserSameModel checks that newParser, which fills helpVars in
// itself and keeps kong's interpolation off most strings, builds the same
// model as kong.New with kong.Vars(helpVars): every help text, placeholder,
// default and enum of every command.
func TestNewParserSameModel(t *testing.T) {
	texts := func(k *kong.Kong) []string {
		var out []string
		err := kong.Visit(k.Model, func(v kong.Visitable, next kong.Next) error {
			switch v := v.(type) {
			case *kong.Node:
				out = append(out, fmt.Sprintf("node %s help=%q", v.Path(), v.Help))
			case *kong.Flag:
				out = append(out, fmt.Sprintf("flag %s placeholder=%q", v.Name, v.PlaceHolder))
			case *kong.Value:
				out = append(out, fmt.Sprintf("value %s help=%q default=%q enum=%q", v.Name, v.Help, v.Default, v.Enum))
			}
			return next(nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want, err := kong.New(&CLI{}, exitCodes, kong.Name("wirecat"), kong.Vars(helpVars))
	if err != nil {
		t.Fatal(err)
	}
	got, err := newParser(&CLI{}, exitCodes, kong.Name("wirecat"))
	if err != nil {
		t.Fatal(err)
	}
	w, g := texts(want), texts(got)
	if len(w) < 100 {
		t.Fatalf("only %d strings in the model: the walk is wrong", len(w))
	}
	if !slices.Equal(w, g) {
		for i := range min(len(w), len(g)) {
			if w[i] != g[i] {
				t.Fatalf("models differ at %d:\nkong.New:  %s\nnewParser: %s", i, w[i], g[i])
			}
		}
		t.Fatalf("models differ in size: %d against %d", len(w), len(g))
	}
	for _, s := range g {
		if strings.Contains(s, "${") {
			t.Fatalf("variable left in %s", s)
		}
	}
}

// The start-up guards (issue 15: `wirecat version` and `wirecat send` to a
// refused port no slower than `socat -V`). Wall-clock time is useless on a
// shared machine, so they count what time follows and noise does not:
// allocations building the command-line model, allocations of the package
// initialisers, and instructions executed (valgrind). bench/README.md
// ("Start-up") says where the time goes and how it was measured; a budget
// here fails with the figure measured when it was set.

// TestModelOneCommand checks that a command line naming a command builds
// kong's model for that command only (cliFor), within a budget of
// allocations: the model is most of the start-up of every command but
// version's, and the whole model costs about six times one command's.
func TestModelOneCommand(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	build := func(args ...string) float64 {
		return testing.AllocsPerRun(5, func() {
			cli, _ := cliFor(args)
			if _, err := newParser(cli, kong.Name("wirecat"), kong.Writers(io.Discard, io.Discard), kong.Exit(func(int) {})); err != nil {
				t.Fatal(err)
			}
		})
	}
	whole := build("--help")
	// 3,836 for relay, the largest, on 2026-11-29 (19,449 for the whole
	// model); room for some twenty more flags on any command.
	const budget = 5500
	ty := reflect.TypeFor[CLI]()
	for i := range ty.NumField() {
		f := ty.Field(i)
		if _, isCmd := f.Tag.Lookup("cmd"); !isCmd {
			continue
		}
		name := strings.ToLower(f.Name)
		cli, _ := cliFor([]string{name})
		if _, full := cli.(*CLI); full {
			if !reflect.PointerTo(f.Type).Implements(reflect.TypeFor[wholeModel]()) {
				t.Errorf("%s: the whole model was built for one command", name)
			}
			continue
		}
		n := build(name)
		t.Logf("%-10s %5.0f allocations (whole model: %.0f)", name, n, whole)
		if n > budget || n > whole/3 {
			t.Errorf("%s: building its model takes %.0f allocations, over the budget of %d (and a third of the whole model's %.0f): "+
				"every `wirecat %s` pays it at start-up; see bench/README.md, Start-up", name, n, budget, whole, name)
		}
	}
}

// TestStartupBudgets measures a binary built as released (static,
// stripped: what bench/ and goreleaser build), whatever this test binary is
// (go test -race included).
func TestStartupBudgets(t *testing.T) {
	release := filepath.Join(t.TempDir(), "wirecat")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", release, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("inits", func(t *testing.T) { startupInits(t, release) })
	t.Run("instructions", func(t *testing.T) { startupInstructions(t, release) })
}

// startupInits bounds what the package initialisers allocate before main
// runs (every command pays it, version included): a dependency that builds
// tables at init (gopacket did: 0.8 ms per start) shows here first.
func startupInits(t *testing.T, release string) {
	cmd := exec.Command(release, "version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("wirecat version: %v\n%s", err, stderr.String())
	}
	// init encoding/gob @2.5 ms, 0.17 ms clock, 27728 bytes, 369 allocs
	line := regexp.MustCompile(`(?m)^init (\S+) @.* clock, (\d+) bytes, (\d+) allocs$`)
	var total, pkgs int
	for _, m := range line.FindAllStringSubmatch(stderr.String(), -1) {
		bytes, _ := strconv.Atoi(m[2])
		total += bytes
		pkgs++
		// Ours build nothing worth naming at init (2 KiB at most on
		// 2026-11-29): a table wanted by one command is built when used.
		if strings.HasPrefix(m[1], "github.com/wirecat-dev/wirecat") && bytes > 8<<10 {
			t.Errorf("package %s allocates %d bytes at init, over 8 KiB: make it lazy (every command pays it at start-up)", m[1], bytes)
		}
	}
	if pkgs < 20 {
		t.Fatalf("only %d init lines in GODEBUG=inittrace=1 output: the format changed?\n%s", pkgs, stderr.String())
	}
	// 150 KB in 116 packages on 2026-11-29: encoding/gob (pion/dtls) 27 KB,
	// runtime/metrics 15 KB, go.bug.st/serial 12 KB, unicode 11 KB...
	t.Logf("package inits: %d bytes in %d packages", total, pkgs)
	if budget := 256 << 10; total > budget {
		t.Errorf("the package inits allocate %d bytes, over the %d budget (150 KB on 2026-11-29); "+
			"GODEBUG=inittrace=1 wirecat version names the culprit", total, budget)
	}
}

// startupInstructions bounds the instructions `wirecat version` and
// `wirecat send` to a refused port execute, counted by valgrind: unlike
// time, the count hardly moves with the machine's load (±4% between runs,
// from the runtime's own threads).
func startupInstructions(t *testing.T, release string) {
	need(t, "valgrind")
	refused := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	for _, c := range []struct {
		args   []string
		budget float64 // millions of instructions
		then   string  // measured on 2026-11-29
	}{
		// socat -V: 4.5 M (mostly the dynamic loader); a Go hello world 0.33 M.
		{[]string{"version"}, 2.4, "1.83–1.97 M: the runtime's start 0.5 M, the package inits 0.9 M"},
		{[]string{"send", refused, "x"}, 7.5, "6.28–6.38 M: version's 1.9 M, kong's model 3.1 M, its parse 0.9 M, the send 0.4 M"},
	} {
		n := instructions(t, release, c.args...)
		t.Logf("wirecat %s: %.2f M instructions (budget %.1f M)", c.args[0], n/1e6, c.budget)
		if n > c.budget*1e6 {
			t.Errorf("wirecat %s executes %.2f M instructions, over its %.1f M budget (%s); see bench/README.md, Start-up",
				strings.Join(c.args, " "), n/1e6, c.budget, c.then)
		}
	}
}

// instructions runs bin args under valgrind and returns the instructions
// it executed, all threads together.
func instructions(t *testing.T, bin string, args ...string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "valgrind", append([]string{"--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", bin}, args...)...)
	// No preemption signals: fewer instructions that depend on timing.
	cmd.Env = append(os.Environ(), "GODEBUG=asyncpreemptoff=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Run() // send exits 1: the refusal is what is measured
	m := regexp.MustCompile(`I\s+refs:\s+([\d,]+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no instruction count from valgrind:\n%s", stderr.String())
	}
	n, err := strconv.ParseFloat(strings.ReplaceAll(m[1], ",", ""), 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
