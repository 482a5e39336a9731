package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// runSimulate parses and runs `simulate ARGS` with a parser of its own, so it
// works whether or not the CLI struct lists the command yet.
func runSimulate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var cli struct {
		Globals
		Simulate SimulateCmd `cmd:""`
	}
	var stdout, stderr bytes.Buffer
	app := &App{Ctx: context.Background(), Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Getenv: func(string) string { return "" }, StdinNull: true}
	parser, err := kong.New(&cli, kong.Vars(helpVars), kong.Bind(app), kong.Writers(&stdout, &stderr),
		kong.Exit(func(int) { t.Fatal("kong exited") }))
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := parser.Parse(append([]string{"simulate"}, args...))
	if err != nil {
		return exitUsage, stdout.String(), err.Error()
	}
	kctx.Bind(&cli.Globals)
	if err := kctx.Run(); err != nil {
		return report(&stderr, err), stdout.String(), stderr.String()
	}
	return exitOK, stdout.String(), stderr.String()
}

func writeScript(t *testing.T, src string) string {
	p := filepath.Join(t.TempDir(), "dev.lua")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSimulateThermoBuiltinSink(t *testing.T) {
	code, out, errOut := runSimulate(t, "../../scripts/thermo.lua", "--arg", "interval=0.01", "--arg", "readings=3",
		"--frame", "delim:,", "--count", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := len(strings.Fields(out)); n != 6 {
		t.Errorf("stdout %q, want 6 readings", out)
	}
	if !strings.Contains(errOut, "wirecat: 2 devices started") || !strings.Contains(errOut, "sent 6 messages") {
		t.Errorf("summary %q", errOut)
	}
}

func TestSimulateExitCodes(t *testing.T) {
	code, _, errOut := runSimulate(t, writeScript(t, "print(1)\nlocal = 2\n"))
	if code != exitUsage || !strings.Contains(errOut, "dev.lua:2:") {
		t.Errorf("syntax error: exit %d, %q", code, errOut)
	}
	code, _, errOut = runSimulate(t, writeScript(t, "if device.id == 2 then error('bad board') end"), "--count", "3")
	if code != exitFailure || !strings.Contains(errOut, "device 2: dev.lua:1: bad board") ||
		!strings.Contains(errOut, "1 failed") {
		t.Errorf("runtime error: exit %d, %q", code, errOut)
	}
	code, _, errOut = runSimulate(t, "no-such.lua")
	if code != exitUsage {
		t.Errorf("missing script: exit %d, %q", code, errOut)
	}
	code, _, errOut = runSimulate(t, writeScript(t, ""), "--arg", "novalue")
	if code != exitUsage || !strings.Contains(errOut, "KEY=VALUE") {
		t.Errorf("bad --arg: exit %d, %q", code, errOut)
	}
	code, _, _ = runSimulate(t, writeScript(t, "while true do end"), "--duration", "200ms")
	if code != exitOK {
		t.Errorf("stopped at deadline: exit %d", code)
	}
}
