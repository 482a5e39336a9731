package main

// The generated files (docs/cli.md, completions/*) are checked against
// the CLI model here, so they cannot drift from it.

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/wirecat-dev/wirecat/completion"
	"github.com/wirecat-dev/wirecat/docgen"
)

var update = flag.Bool("update", false, "rewrite docs/cli.md and completions/ from the CLI model")

const regenDocs = "go test ./cmd/wirecat -run TestCLIDoc -update"

// model builds the kong model the way run() does.
func model(t *testing.T) *kong.Application {
	t.Helper()
	var cli CLI
	k, err := kong.New(&cli, exitCodes, kong.Name("wirecat"), kong.Vars(helpVars), kong.Exit(func(int) {}))
	if err != nil {
		t.Fatal(err)
	}
	return k.Model
}

// checkFresh compares a generated file with what is committed, or writes
// it with -update.
func checkFresh(t *testing.T, path string, got []byte, how string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: generate it with `%s`", err, how)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale (the CLI changed): regenerate it with `%s`\n%s", path, how, firstDiff(string(want), string(got)))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "first difference at line " + strconv.Itoa(i+1) + ":\n  committed: " + x + "\n  generated: " + y
		}
	}
	return ""
}

func TestCLIDoc(t *testing.T) {
	var buf bytes.Buffer
	app := model(t)
	if err := docgen.Markdown(&buf, app, regenDocs); err != nil {
		t.Fatal(err)
	}
	doc := buf.String()
	// Every command and every flag is in it.
	var visit func(n *kong.Node)
	visit = func(n *kong.Node) {
		if n.Hidden {
			return
		}
		if n.Type == kong.CommandNode && !strings.Contains(doc, "\n## "+n.FullPath()+"\n") {
			t.Errorf("docs lack a section for %s", n.FullPath())
		}
		for _, f := range n.Flags {
			if !f.Hidden && !strings.Contains(doc, "--"+f.Name) {
				t.Errorf("docs lack %s --%s", n.FullPath(), f.Name)
			}
		}
		for _, c := range n.Children {
			visit(c)
		}
	}
	visit(app.Node)
	checkFresh(t, filepath.Join("..", "..", "docs", "cli.md"), buf.Bytes(), regenDocs)
}

// The committed scripts are what `wirecat completion SHELL` prints, and
// the binary's model is the one the docs are generated from.
func TestCompletionsFresh(t *testing.T) {
	root, err := completion.Build(model(t), completionOptions)
	if err != nil {
		t.Fatal(err)
	}
	for shell, file := range completionFiles {
		t.Run(shell, func(t *testing.T) {
			stdout, stderr, code := runWirecat(t, "", 30*time.Second, "completion", shell)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var want bytes.Buffer
			completion.Write(&want, shell, root)
			if stdout != want.String() {
				t.Fatalf("the binary's model and the test's differ: keep model() in step with run()\n%s", firstDiff(want.String(), stdout))
			}
			checkFresh(t, filepath.Join("..", "..", "completions", file), []byte(stdout), "go generate ./cmd/wirecat")
		})
	}
}

var completionFiles = map[string]string{
	"bash":       "wirecat.bash",
	"zsh":        "_wirecat",
	"fish":       "wirecat.fish",
	"powershell": "wirecat.ps1",
}
