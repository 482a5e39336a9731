// Package shelltest runs completion scripts in real shells for tests: it
// fills in what the shell would (COMP_WORDS, COMP_LINE...) and returns
// the candidates.
package shelltest

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Need skips the test when the shell is missing, but fails it when the
// environment variable CI is set: CI installs every shell.
func Need(t testing.TB, shell string) string {
	t.Helper()
	path, err := exec.LookPath(shell)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI but not installed", shell)
		}
		t.Skipf("%s not installed", shell)
	}
	return path
}

// BashWords splits a command line the way bash fills COMP_WORDS: at
// blanks, and around runs of the default COMP_WORDBREAKS characters that
// matter here (= and :), which become words of their own. A line ending in
// a blank gets an empty last word.
func BashWords(line string) []string {
	var words []string
	for _, field := range strings.Fields(line) {
		start := 0
		for i := 0; i < len(field); {
			if !isBreak(field[i]) {
				i++
				continue
			}
			if i > start {
				words = append(words, field[start:i])
			}
			j := i
			for j < len(field) && isBreak(field[j]) {
				j++
			}
			words = append(words, field[i:j])
			start, i = j, j
		}
		if start < len(field) {
			words = append(words, field[start:])
		}
	}
	if line == "" || strings.ContainsAny(line[len(line)-1:], " \t") {
		words = append(words, "")
	}
	return words
}

func isBreak(c byte) bool { return c == '=' || c == ':' }

// Bash sources script in a fresh bash, completes line (the cursor at its
// end) with function fn, and returns COMPREPLY. dir is the working
// directory, for file names.
func Bash(t testing.TB, script, fn, dir, line string) []string {
	t.Helper()
	bash := Need(t, "bash")
	words := BashWords(line)
	var prog strings.Builder
	prog.WriteString("source " + quote(script) + " || exit 9\n")
	prog.WriteString("COMP_WORDS=(")
	for _, w := range words {
		prog.WriteString(quote(w) + " ")
	}
	prog.WriteString(")\n")
	prog.WriteString("COMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n")
	prog.WriteString("COMP_LINE=" + quote(line) + "\nCOMP_POINT=${#COMP_LINE}\n")
	prog.WriteString(fn + " " + quote(words[0]) + " " + quote(words[len(words)-1]) + " " + quote(prev(words)) + " || exit 8\n")
	prog.WriteString(`printf '%s\n' "${COMPREPLY[@]}"` + "\n")
	return run(t, dir, bash, "--norc", "--noprofile", "-c", prog.String())
}

func prev(words []string) string {
	if len(words) < 2 {
		return ""
	}
	return words[len(words)-2]
}

// Fish sources script in fish and asks for the completions of line.
func Fish(t testing.TB, script, dir, line string) []string {
	t.Helper()
	fish := Need(t, "fish")
	prog := "source " + quote(script) + "; or exit 9\ncomplete -C" + quote(line) + "\n"
	out := run(t, dir, fish, "--no-config", "-c", prog)
	for i, l := range out {
		out[i], _, _ = strings.Cut(l, "\t") // drop descriptions
	}
	return out
}

func run(t testing.TB, dir, shell string, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shell, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", shell, err, out)
	}
	s := strings.TrimRight(string(out), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// quote single-quotes s for bash and fish alike: test lines hold neither
// ' nor \, which the two shells escape differently.
func quote(s string) string {
	if strings.ContainsAny(s, `'\`) {
		panic("shelltest: quotes and backslashes are not supported: " + s)
	}
	return "'" + s + "'"
}

// BashReadline types line and a Tab into an interactive bash on a
// pseudo-terminal (driven by python3's pty module), with script sourced,
// and returns the command line as readline left it: what a user sees.
// This checks what COMPREPLY alone cannot: word breaks at ':' and '=',
// nospace after prefixes, directories ending in '/'.
func BashReadline(t testing.TB, script, dir, line string) string {
	t.Helper()
	Need(t, "bash")
	python := Need(t, "python3")
	out := run(t, dir, python, "-c", ptyDriver, script, line)
	// The last line of the screen is the edited command line.
	last := out[len(out)-1]
	last = strings.TrimPrefix(last, "$ ")
	return last
}

const ptyDriver = `
import os, pty, sys, time, select
script, line = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.environ['PS1'] = '$ '
    os.environ['TERM'] = 'dumb'
    os.execvp('bash', ['bash', '--norc', '--noprofile', '-i'])

def read_until(marker, timeout):
    out = b''
    end = time.time() + timeout
    while time.time() < end and marker not in out:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out

def settle(timeout):
    # Read until the terminal has been quiet for a moment.
    out = b''
    end = time.time() + timeout
    quiet = time.time() + 0.3
    while time.time() < end and time.time() < quiet:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
            quiet = time.time() + 0.3
    return out

os.write(fd, b"bind 'set show-all-if-ambiguous on'; bind 'set completion-query-items 0'; "
             b"bind 'set page-completions off'; source '" + script.encode() + b"' && echo READY''!\n")
read_until(b'READY!', 10)
settle(2)
os.write(fd, line.encode() + b"\t")
out = settle(5)
os.write(fd, b"\x15exit\n")
sys.stdout.write(out.decode(errors='replace').replace('\r', ''))
`
