package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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

// The README's first command: thermo.lua declares FRAME = "delim:,", so the
// built-in sink prints one reading a line and the summary starts on its own.
func TestSimulateThermoE2E(t *testing.T) {
	stdout, stderr, code := runWirecat(t, "", 30*time.Second, "simulate", "../../scripts/thermo.lua", "--duration", "2s")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	reading := regexp.MustCompile(`^\d+\.\d:\d+$`)
	got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(got) < 2 || len(got) > 3 || !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("stdout %q: want 2 or 3 readings, one a line", stdout)
	}
	for _, l := range got {
		if !reading.MatchString(l) {
			t.Errorf("line %q is not a t:h reading", l)
		}
	}
	if !strings.HasPrefix(stderr, "wirecat: 1 device started") || !strings.Contains(stderr, "1 stopped at the deadline") {
		t.Errorf("stderr %q", stderr)
	}
	// -o json is honoured: the sink's messages as data events.
	stdout, stderr, code = runWirecat(t, "", 30*time.Second, "simulate", "../../scripts/thermo.lua", "--duration", "1500ms", "-o", "json")
	if code != exitOK || !regexp.MustCompile(`"event":"data".*"text":"\d+\.\d:\d+"`).MatchString(stdout) {
		t.Errorf("-o json: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	// --frame wins over FRAME, for the device and the sink alike.
	stdout, stderr, code = runWirecat(t, "", 30*time.Second, "simulate", "../../scripts/thermo.lua", "--duration", "1500ms", "--frame", "line")
	if code != exitOK || !reading.MatchString(strings.Split(stdout, "\n")[0]) {
		t.Errorf("--frame line: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
}

// A framer script that cannot be loaded is a usage error naming the file.
func TestLuaFramerLoadErrorsE2E(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "broken.lua")
	os.WriteFile(bad, []byte("return {decode = function(buf)\n  return buf,\n"), 0o644)
	notable := filepath.Join(dir, "notable.lua")
	os.WriteFile(notable, []byte("return 42\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"connect", "127.0.0.1:1", "--frame", "lua:nope.lua"}, "nope.lua"},
		{[]string{"connect", "127.0.0.1:1", "--frame", "lua:" + bad}, "broken.lua:"},
		{[]string{"listen", "127.0.0.1:0", "--frame", "lua:" + notable}, "notable.lua: the script must return a table"},
		{[]string{"simulate", "../../scripts/thermo.lua", "--frame", "lua:nope.lua"}, "nope.lua"},
		{[]string{"simulate", writeScript(t, "FRAME = \"len:u7\"\n")}, "dev.lua:1: FRAME:"},
		{[]string{"simulate", writeScript(t, "FRAME = args.frame\n")}, "dev.lua:1: FRAME must be a framing spec in quotes"},
	} {
		_, stderr, code := runWirecat(t, "", 20*time.Second, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %q", c.args, code, stderr, c.want)
		}
	}
}

// A device's runtime error shows script:line and a traceback line.
func TestSimulateRuntimeErrorTraceback(t *testing.T) {
	src := "local function read(t)\n  return t.value\nend\nif device.id == 2 then read(nil) end\nsleep(0.05)\n"
	code, _, errOut := runSimulate(t, writeScript(t, src), "--count", "3")
	want := "wirecat: device 2: dev.lua:2: attempt to index a non-table object(nil) with key 'value'\n\tdev.lua:4: in main chunk\n"
	if code != exitFailure || !strings.Contains(errOut, want) || !strings.Contains(errOut, "3 devices started") ||
		!strings.Contains(errOut, "1 failed") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
