package main

// Shipping: completions work in real shells, every --help fits 80 columns
// and has examples, version reports what the linker was told, and the
// release binaries goreleaser built run.

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/alecthomas/kong"
	"github.com/wirecat-dev/wirecat/completion/shelltest"
)

// completionDir is a directory with files to complete: scripts and
// sessions among others.
func completionDir(t *testing.T) string {
	dir := t.TempDir()
	for _, f := range []string{"thermo.lua", "led.lua", "run.jsonl", "notes.txt", "lib/framer.lua"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func scriptPath(t *testing.T, name string) string {
	p, err := filepath.Abs(filepath.Join("..", "..", "completions", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var frameForms = []string{"raw", "line", "crlf", "delim:", "len:u8", "len:u16be", "len:u16le",
	"len:u32be", "len:u32le", "len:varint", "fixed:", "slip", "cobs", "modbus-tcp", "modbus-rtu", "lua:"}

func TestBashCompletion(t *testing.T) {
	script := scriptPath(t, "wirecat.bash")
	dir := completionDir(t)
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"wirecat li", []string{"listen"}},
		{"wirecat s", []string{"send", "simulate", "show", "summary"}},
		{"wirecat replay ", []string{"run.jsonl", "lib"}},
		{"wirecat show r", []string{"run.jsonl"}},
		{"wirecat --color ", []string{"auto", "always", "never"}},
		{"wirecat connect --fr", []string{"--frame"}},
		{"wirecat connect --frame ", frameForms},
		{"wirecat connect --frame l", []string{"line", "len:u8", "len:u16be", "len:u16le", "len:u32be", "len:u32le", "len:varint", "lua:"}},
		{"wirecat connect --frame len:u3", []string{"u32be", "u32le"}}, // bash split at ':'
		{"wirecat connect --frame=c", []string{"crlf", "cobs"}},
		{"wirecat listen --frame lua:", []string{"led.lua", "thermo.lua", "lib"}},
		{"wirecat connect -o j", []string{"json"}},
		{"wirecat connect --output ", []string{"raw", "lines", "text", "hex", "json"}},
		{"wirecat send -i ", []string{"raw", "lines", "hex"}},
		{"wirecat send --record ", []string{"run.jsonl", "lib"}},
		{"wirecat connect tc", []string{"tcp://", "tcp4://", "tcp6://"}},
		{"wirecat connect u", []string{"udp://", "udp4://", "udp6://", "unix://", "unixgram://"}},
		{"wirecat completion ", []string{"bash", "zsh", "fish", "powershell"}},
		{"wirecat simulate ", []string{"led.lua", "thermo.lua", "lib"}},
		{"wirecat relay --script t", []string{"thermo.lua"}},
	} {
		t.Run(tc.line, func(t *testing.T) {
			got := shelltest.Bash(t, script, "_wirecat", dir, tc.line)
			if !sameSet(got, tc.want) {
				t.Errorf("%q completes to %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}

// TestBashReadline types into a real interactive bash and presses Tab:
// what the user sees, word breaks and all.
func TestBashReadline(t *testing.T) {
	script := scriptPath(t, "wirecat.bash")
	dir := completionDir(t)
	for line, want := range map[string]string{
		"wirecat li":                          "wirecat listen ",
		"wirecat connect --fr":                "wirecat connect --frame ",
		"wirecat connect --frame del":         "wirecat connect --frame delim:",
		"wirecat connect --frame len:u32l":    "wirecat connect --frame len:u32le ",
		"wirecat connect --frame=len:u8 -o j": "wirecat connect --frame=len:u8 -o json ",
		"wirecat connect --frame lua:th":      "wirecat connect --frame lua:thermo.lua ",
		"wirecat connect --frame lua:li":      "wirecat connect --frame lua:lib/",
		"wirecat connect tl":                  "wirecat connect tls://",
		"wirecat simulate th":                 "wirecat simulate thermo.lua ",
		"wirecat replay r":                    "wirecat replay run.jsonl ",
	} {
		t.Run(line, func(t *testing.T) {
			if got := shelltest.BashReadline(t, script, dir, line); got != want {
				t.Errorf("%q + Tab gives %q, want %q", line, got, want)
			}
		})
	}
}

func TestFishCompletion(t *testing.T) {
	script := scriptPath(t, "wirecat.fish")
	dir := completionDir(t)
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"wirecat li", []string{"listen"}},
		{"wirecat connect --fr", []string{"--frame"}},
		{"wirecat connect --frame len:u3", []string{"len:u32be", "len:u32le"}},
		{"wirecat connect -o j", []string{"json"}},
		{"wirecat simulate ", []string{"led.lua", "thermo.lua", "lib/"}},
		{"wirecat completion ", []string{"bash", "zsh", "fish", "powershell"}},
	} {
		t.Run(tc.line, func(t *testing.T) {
			got := shelltest.Fish(t, script, dir, tc.line)
			if !sameSet(got, tc.want) {
				t.Errorf("%q completes to %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}

// TestZshCompletionLoads checks the zsh script parses, and registers
// itself both when sourced and when found on $fpath by compinit.
func TestZshCompletionLoads(t *testing.T) {
	zsh := shelltest.Need(t, "zsh")
	script := scriptPath(t, "_wirecat")
	if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	for name, prog := range map[string]string{
		"sourced": "autoload -U compinit && compinit -u -D && source " + script + " && [[ $_comps[wirecat] == _wirecat ]] && whence -w _wirecat_connect",
		"fpath":   "fpath=(" + filepath.Dir(script) + " $fpath) && autoload -U compinit && compinit -u -D && [[ $_comps[wirecat] == _wirecat ]]",
	} {
		cmd := exec.Command(zsh, "-f", "-c", prog)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// commands lists every visible command path ("listen", "connect"...).
func commands(t *testing.T) []string {
	var out []string
	var visit func(n *kong.Node)
	visit = func(n *kong.Node) {
		if n.Hidden {
			return
		}
		if n.Type == kong.CommandNode {
			out = append(out, strings.TrimPrefix(n.FullPath(), "wirecat "))
		}
		for _, c := range n.Children {
			visit(c)
		}
	}
	visit(model(t).Node)
	return out
}

// TestHelpFits80Columns: every --help reads in a plain 80-column terminal.
func TestHelpFits80Columns(t *testing.T) {
	for _, cmd := range append([]string{""}, commands(t)...) {
		args := append(strings.Fields(cmd), "--help")
		stdout, stderr, code := runWirecat(t, "", 30*time.Second, args...)
		if code != 0 {
			t.Errorf("wirecat %s: exit %d: %s", strings.Join(args, " "), code, stderr)
			continue
		}
		for i, line := range strings.Split(stdout, "\n") {
			if n := utf8.RuneCountInString(line); n > 80 {
				t.Errorf("wirecat %s line %d is %d columns:\n%s", strings.Join(args, " "), i+1, n, line)
			}
		}
	}
}

// TestHelpHasExamples: every command's --help shows how to run it.
func TestHelpHasExamples(t *testing.T) {
	for _, cmd := range commands(t) {
		if cmd == "version" {
			continue // takes nothing: `wirecat version` is its only form
		}
		stdout, _, _ := runWirecat(t, "", 30*time.Second, append(strings.Fields(cmd), "--help")...)
		if !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "    wirecat "+cmd) {
			t.Errorf("wirecat %s --help has no examples (an `Examples:` paragraph with indented `wirecat %s ...` lines in its Help())", cmd, cmd)
		}
	}
}

// TestVersionLdflags builds wirecat the way goreleaser does and checks
// version prints what the linker was told.
func TestVersionLdflags(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "wirecat")
	ld := "-s -w -X main.version=1.2.3 -X main.commit=abc1234 -X main.date=2026-01-02T03:04:05Z"
	build := exec.Command("go", "build", "-trimpath", "-ldflags", ld, "-o", exe, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(exe, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "wirecat 1.2.3\ncommit: abc1234\nbuilt: 2026-01-02T03:04:05Z\ngo: " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if string(out) != want {
		t.Fatalf("version printed\n%s\nwant\n%s", out, want)
	}
}

// TestVersionFallback: without ldflags, version falls back to the build
// info and says what it does not know instead of printing blanks.
func TestVersionFallback(t *testing.T) {
	stdout, stderr, code := runWirecat(t, "", 10*time.Second, "version")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "wirecat ") || !strings.HasPrefix(lines[1], "commit: ") ||
		!strings.HasPrefix(lines[2], "built: ") || lines[3] != "go: "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("version printed %q", stdout)
	}
	for _, l := range lines {
		if strings.HasSuffix(l, " ") || strings.HasSuffix(l, ":") {
			t.Errorf("blank field: %q", l)
		}
	}
	// In-process: nothing from the linker, nothing stamped in a test
	// binary's build info.
	v, c, d := buildInfo()
	if v != "dev" || c != "unknown" || d != "unknown" {
		t.Errorf("buildInfo() = %q %q %q, want dev unknown unknown", v, c, d)
	}
	version, commit, date = "9.9.9", "feed", "today"
	defer func() { version, commit, date = "", "", "" }()
	if v, c, d := buildInfo(); v != "9.9.9" || c != "feed" || d != "today" {
		t.Errorf("buildInfo() = %q %q %q with ldflags set", v, c, d)
	}
}

// TestReleaseBinaries runs what `goreleaser release --snapshot` left in
// dist/ (.ci/run builds it, then runs this test with
// WIRECAT_DIST_REQUIRED=1): the linux/amd64 binary reports its version,
// and every binary is stripped and under 15 MB.
func TestReleaseBinaries(t *testing.T) {
	dist := filepath.Join("..", "..", "dist")
	bins, _ := filepath.Glob(filepath.Join(dist, "wirecat*_*", "wirecat*"))
	if _, err := os.Stat(filepath.Join(dist, "artifacts.json")); err != nil {
		bins = nil // written last: without it, the snapshot did not finish
	}
	if len(bins) == 0 {
		if os.Getenv("WIRECAT_DIST_REQUIRED") != "" {
			t.Fatal("no binaries in dist/: run `goreleaser release --snapshot --clean --skip=publish` first")
		}
		t.Skip("no snapshot build in dist/")
	}
	const limit = 15 << 20
	for _, b := range bins {
		fi, err := os.Stat(b)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %.1f MiB", strings.TrimPrefix(b, dist+string(filepath.Separator)), float64(fi.Size())/(1<<20))
		if fi.Size() > limit {
			t.Errorf("%s is %d bytes, over 15 MB", b, fi.Size())
		}
	}
	want := []string{"linux_amd64", "linux_arm64", "linux_arm_6", "linux_arm_7", "linux_mips_softfloat",
		"linux_mipsle_softfloat", "darwin_amd64", "darwin_arm64", "windows_amd64", "windows_arm64"}
	for _, w := range want {
		if !slices.ContainsFunc(bins, func(b string) bool {
			return strings.Contains(b, "_"+w+string(filepath.Separator)) || strings.Contains(b, "_"+w+"_v")
		}) {
			t.Errorf("dist/ has no %s build", w)
		}
	}
	amd64, _ := filepath.Glob(filepath.Join(dist, "wirecat_linux_amd64*", "wirecat"))
	if len(amd64) != 1 || runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("cannot run the linux/amd64 build here (%v)", amd64)
	}
	out, err := exec.Command(amd64[0], "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", amd64[0], err, out)
	}
	lines := strings.Split(string(out), "\n")
	if !strings.HasPrefix(lines[0], "wirecat ") || lines[0] == "wirecat dev" || strings.Contains(string(out), "unknown") || strings.Contains(string(out), ": none") {
		t.Fatalf("the release binary does not know its version, commit and date:\n%s", out)
	}
	if strip, err := exec.LookPath("file"); err == nil {
		info, _ := exec.Command(strip, amd64[0]).Output()
		if !strings.Contains(string(info), "stripped") || strings.Contains(string(info), "not stripped") {
			t.Errorf("not stripped: %s", info)
		}
	}
}
