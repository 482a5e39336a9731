package completion_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/wirecat-dev/wirecat/completion"
	"github.com/wirecat-dev/wirecat/completion/shelltest"
)

// A small CLI shaped like wirecat's.
type testCLI struct {
	Verbose bool   `short:"v" help:"Say more."`
	Color   string `enum:"auto,always,never" default:"auto" help:"Colour: auto, always or never."`

	Connect  connectCmd  `cmd:"" aliases:"c" help:"Connect somewhere."`
	Simulate simulateCmd `cmd:"" help:"Run a device [script]."`
	Replay   replayCmd   `cmd:"" help:"Replay a session: it's 'quoted'."`
	Secret   struct{}    `cmd:"" hidden:""`
	Group    groupCmd    `cmd:"" help:"Nested commands."`
	Pick     struct {
		Colour string `arg:"" enum:"red,green"`
	} `cmd:"" help:"Pick a colour."`
}

type dataFlags struct {
	Frame  string   `placeholder:"SPEC" predictor:"frame" help:"Framing."`
	Output string   `short:"o" placeholder:"MODE" enum:",raw,lines,json" default:"" help:"Output mode."`
	Record string   `placeholder:"FILE" predictor:"session" help:"Record to FILE."`
	ALPN   []string `placeholder:"P1,P2" help:"Protocols."`
}

type connectCmd struct {
	Addr  string `arg:"" placeholder:"ADDR" predictor:"addr" help:"Where."`
	CA    string `type:"existingfile" help:"CA file."`
	Delay bool   `negatable:"" help:"Delay."`
	dataFlags
}

type simulateCmd struct {
	Script string   `arg:"" predictor:"lua" help:"The device."`
	Args   []string `arg:"" optional:"" help:"Arguments."`
	Count  int      `help:"Devices."`
}

type replayCmd struct {
	File []string `arg:"" predictor:"session" help:"Sessions."`
}

type groupCmd struct {
	Inner struct {
		Dir string `arg:"" type:"existingdir"`
	} `cmd:"" help:"Inner command."`
}

var predictors = map[string]completion.Predictor{
	"frame":   {Words: []string{"raw", "line", "len:u8", "len:u16be", "delim:", "lua:"}, Prefixes: []completion.Prefix{{"lua:", "*.lua"}}},
	"addr":    {Words: []string{"tcp://", "udp://", "unix://"}, Prefixes: []completion.Prefix{{"unix://", "*"}}},
	"lua":     {Files: "*.lua"},
	"session": {Files: "*.jsonl"},
}

func model(t *testing.T) *completion.Command {
	t.Helper()
	k, err := kong.New(&testCLI{}, kong.Name("tcli"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := completion.Build(k.Model, completion.Options{Predictors: predictors})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// scripts writes every shell's script into a fresh directory that also
// holds files to complete.
func scripts(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	root := model(t)
	for _, sh := range completion.Shells {
		var buf bytes.Buffer
		if err := completion.Write(&buf, sh, root); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "script."+sh), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"work/thermo.lua", "work/notes.txt", "work/run.jsonl", "work/sub/x.lua", "work/other.jsonl"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	return dir
}

func TestModel(t *testing.T) {
	root := model(t)
	var names []string
	for _, s := range root.Subs {
		names = append(names, s.Name)
	}
	if want := []string{"connect", "simulate", "replay", "group", "pick"}; !slices.Equal(names, want) {
		t.Fatalf("subcommands %v, want %v (hidden ones left out)", names, want)
	}
	conn := root.Subs[0]
	var flags []string
	for _, f := range conn.Flags {
		flags = append(flags, f.Names...)
	}
	for _, want := range []string{"--help", "-h", "-v", "--color", "--ca", "--delay", "--no-delay", "--frame", "-o", "--alpn"} {
		if !slices.Contains(flags, want) {
			t.Errorf("connect lacks %s: %v", want, flags)
		}
	}
	for _, f := range conn.Flags {
		switch f.Long {
		case "output":
			if !slices.Equal(f.Value.Words, []string{"raw", "lines", "json"}) {
				t.Errorf("--output values %v: the empty enum value must be dropped", f.Value.Words)
			}
		case "ca":
			if f.Value == nil || f.Value.Files != "*" {
				t.Errorf("--ca (existingfile) should complete files: %+v", f.Value)
			}
		case "verbose":
			if f.Takes {
				t.Error("a bool flag takes no value")
			}
		case "alpn":
			if !f.Repeat || !f.Takes {
				t.Error("--alpn is a repeatable flag with a value")
			}
		}
	}
}

func TestUnknownPredictor(t *testing.T) {
	k, err := kong.New(&testCLI{}, kong.Name("tcli"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = completion.Build(k.Model, completion.Options{})
	if err == nil || !strings.Contains(err.Error(), `unknown predictor "frame"`) || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("want an error naming the predictor and the command, got %v", err)
	}
}

func TestUnknownShell(t *testing.T) {
	err := completion.Write(&bytes.Buffer{}, "tcsh", model(t))
	if err == nil || !strings.Contains(err.Error(), `unknown shell "tcsh"`) {
		t.Fatalf("got %v", err)
	}
}

func TestBash(t *testing.T) {
	dir := scripts(t)
	script := filepath.Join(dir, "script.bash")
	work := filepath.Join(dir, "work")
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"tcli ", []string{"connect", "simulate", "replay", "group", "pick"}},
		{"tcli co", []string{"connect"}},
		{"tcli -v --color never s", []string{"simulate"}},
		{"tcli --co", []string{"--color"}},
		{"tcli --color ", []string{"auto", "always", "never"}},
		{"tcli --color=al", []string{"always"}},
		{"tcli connect --fr", []string{"--frame"}},
		{"tcli connect --no-", []string{"--no-delay"}},
		{"tcli c --fr", []string{"--frame"}}, // an alias
		{"tcli connect --frame l", []string{"line", "len:u8", "len:u16be", "lua:"}},
		// Bash split len:u1 at the colon; readline replaces only "u1".
		{"tcli connect --frame len:u1", []string{"u16be"}},
		{"tcli connect --frame=len:", []string{"u8", "u16be"}},
		{"tcli connect --frame=r", []string{"raw"}},
		{"tcli connect --frame lua:", []string{"thermo.lua", "sub"}},
		{"tcli connect --frame lua:s", []string{"sub"}},
		{"tcli connect --frame lua:sub/", []string{"sub/x.lua"}},
		{"tcli connect -o j", []string{"json"}},
		{"tcli connect -o ", []string{"raw", "lines", "json"}},
		{"tcli connect --record ", []string{"sub", "other.jsonl", "run.jsonl"}},
		{"tcli connect --ca no", []string{"notes.txt"}},
		{"tcli connect --alpn ", nil},
		{"tcli connect t", []string{"tcp://"}},
		{"tcli connect tcp:", []string{"//"}},
		{"tcli connect unix://", []string{"//sub", "//thermo.lua", "//notes.txt", "//run.jsonl", "//other.jsonl"}},
		{"tcli connect --frame line ", []string{"tcp://", "udp://", "unix://"}},
		{"tcli connect tcp://x:1 ", []string{"--help", "-h", "--verbose", "-v", "--color", "--ca", "--delay", "--no-delay", "--frame", "--output", "-o", "--record", "--alpn"}},
		{"tcli simulate ", []string{"sub", "thermo.lua"}},
		{"tcli simulate --count 3 th", []string{"thermo.lua"}},
		{"tcli simulate thermo.lua ", nil},
		{"tcli replay ", []string{"sub", "other.jsonl", "run.jsonl"}},
		{"tcli replay run.jsonl o", []string{"other.jsonl"}},
		{"tcli group ", []string{"inner"}},
		{"tcli group inner ", []string{"sub"}},
		{"tcli secret ", nil},
		{"tcli pick ", []string{"red", "green"}},
	} {
		t.Run(tc.line, func(t *testing.T) {
			got := shelltest.Bash(t, script, "_tcli", work, tc.line)
			if !sameSet(got, tc.want) {
				t.Errorf("%q: got %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}

func TestFish(t *testing.T) {
	dir := scripts(t)
	script := filepath.Join(dir, "script.fish")
	work := filepath.Join(dir, "work")
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"tcli ", []string{"connect", "c", "simulate", "replay", "group", "pick"}},
		{"tcli pick ", []string{"red", "green"}},
		{"tcli co", []string{"connect"}},
		{"tcli -v s", []string{"simulate"}},
		{"tcli connect --fr", []string{"--frame"}},
		{"tcli c --fr", []string{"--frame"}},
		{"tcli connect --frame l", []string{"line", "len:u8", "len:u16be", "lua:"}},
		{"tcli connect --frame len:u1", []string{"len:u16be"}},
		{"tcli connect --frame=len:u", []string{"--frame=len:u8", "--frame=len:u16be"}},
		{"tcli connect --frame lua:", []string{"lua:thermo.lua", "lua:sub/"}},
		{"tcli connect -o j", []string{"json"}},
		{"tcli connect --record ", []string{"sub/", "other.jsonl", "run.jsonl"}},
		{"tcli connect t", []string{"tcp://"}},
		{"tcli simulate ", []string{"sub/", "thermo.lua"}},
		{"tcli simulate thermo.lua ", nil},
		{"tcli replay run.jsonl o", []string{"other.jsonl"}},
		{"tcli group inner ", []string{"sub/"}},
	} {
		t.Run(tc.line, func(t *testing.T) {
			got := shelltest.Fish(t, script, work, tc.line)
			if !sameSet(got, tc.want) {
				t.Errorf("%q: got %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}

// TestZshLoads checks the script parses and registers itself after
// compinit, both sourced and autoloaded from $fpath.
func TestZshLoads(t *testing.T) {
	zsh := shelltest.Need(t, "zsh")
	dir := scripts(t)
	fpath := filepath.Join(dir, "fpath")
	os.Mkdir(fpath, 0o755)
	b, _ := os.ReadFile(filepath.Join(dir, "script.zsh"))
	os.WriteFile(filepath.Join(fpath, "_tcli"), b, 0o644)
	for name, prog := range map[string]string{
		"syntax":   "",
		"sourced":  "autoload -U compinit && compinit -u -D && source " + filepath.Join(dir, "script.zsh") + " && [[ $_comps[tcli] == _tcli ]] && whence -w _tcli_connect",
		"autoload": "fpath=(" + fpath + " $fpath) && autoload -U compinit && compinit -u -D && [[ $_comps[tcli] == _tcli ]]",
	} {
		t.Run(name, func(t *testing.T) {
			var cmd *exec.Cmd
			if prog == "" {
				cmd = exec.Command(zsh, "-n", filepath.Join(dir, "script.zsh"))
			} else {
				cmd = exec.Command(zsh, "-f", "-c", prog)
			}
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 && prog == "" {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

func TestPowershellShape(t *testing.T) {
	var buf bytes.Buffer
	completion.Write(&buf, "powershell", model(t))
	s := buf.String()
	for _, want := range []string{"Register-ArgumentCompleter -Native -CommandName 'tcli'", "'connect' = 'connect'; 'c' = 'connect'", "'connect --frame' = 'p", "'simulate' = @('p"} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	if strings.Count(s, "{") != strings.Count(s, "}") || strings.Count(s, "(") != strings.Count(s, ")") {
		t.Error("unbalanced braces or parentheses")
	}
	if pwsh, err := exec.LookPath("pwsh"); err == nil {
		out, err := exec.Command(pwsh, "-NoProfile", "-Command", buf.String()).CombinedOutput()
		if err != nil {
			t.Fatalf("pwsh: %v\n%s", err, out)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
