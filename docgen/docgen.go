// Package docgen writes the command-line reference (docs/cli.md) from a
// kong model: every command with its usage, its Help() text and examples,
// its arguments and its flags. Generated from the same model the parser
// uses, the reference cannot describe flags that do not exist.
package docgen

import (
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"
)

// Markdown writes the reference for app. regen is the command that
// regenerates the file, stated in its header.
func Markdown(w io.Writer, app *kong.Application, regen string) error {
	ew := &errWriter{w: w}
	name := app.Name
	ew.printf("# %s command line\n\n", name)
	ew.printf("<!-- Generated from the command-line model by `%s`; do not edit. -->\n\n", regen)
	ew.printf("Every command and flag of %s. `%s <command> --help` prints the same help.\n\n", name, name)

	ew.printf("## Commands\n\n")
	ew.printf("| command | what it does |\n|---|---|\n")
	var cmds []*kong.Node
	walk(app.Node, func(n *kong.Node) {
		if n.Type == kong.CommandNode {
			cmds = append(cmds, n)
			ew.printf("| [`%s`](#%s) | %s |\n", n.FullPath(), anchor(n.FullPath()), cell(n.Help))
		}
	})
	ew.printf("\n## Global flags\n\nUnderstood by every command, before or after its name.\n\n")
	flagTable(ew, app.Node.Flags)
	if app.Node.Detail != "" { // what the application says of itself: exit codes and the like
		detail(ew, app.Node.Detail)
	}

	for _, n := range cmds {
		ew.printf("## %s\n\n", n.FullPath())
		ew.printf("```\n%s %s\n```\n\n", name, n.Summary())
		if n.Help != "" {
			ew.printf("%s\n\n", strings.TrimSpace(n.Help))
		}
		if n.Detail != "" {
			detail(ew, n.Detail)
		}
		if len(n.Positional) > 0 {
			ew.printf("Arguments:\n\n| argument | description |\n|---|---|\n")
			for _, p := range n.Positional {
				ew.printf("| `%s` | %s |\n", p.Summary(), cell(p.Help+enumNote(p)))
			}
			ew.printf("\n")
		}
		if flags := visible(n.Flags); len(flags) > 0 {
			ew.printf("Flags (and the [global flags](#global-flags)):\n\n")
			flagTable(ew, flags)
		} else {
			ew.printf("Flags: the [global flags](#global-flags).\n\n")
		}
	}
	return ew.err
}

func walk(n *kong.Node, fn func(*kong.Node)) {
	if n.Hidden {
		return
	}
	fn(n)
	for _, c := range n.Children {
		walk(c, fn)
	}
}

func visible(flags []*kong.Flag) []*kong.Flag {
	var out []*kong.Flag
	for _, f := range flags {
		if !f.Hidden {
			out = append(out, f)
		}
	}
	return out
}

func flagTable(ew *errWriter, flags []*kong.Flag) {
	ew.printf("| flag | default | description |\n|---|---|---|\n")
	for _, f := range visible(flags) {
		spell := "--" + f.Name
		if !f.IsBool() && !f.IsCounter() {
			ph := f.FormatPlaceHolder()
			if strings.HasPrefix(ph, `"`) { // kong shows a quoted default; the table has a column for it
				ph = strings.ToUpper(f.Name)
			}
			spell += " " + ph
		}
		if f.Short != 0 {
			spell = fmt.Sprintf("-%c, %s", f.Short, spell)
		}
		if neg := f.Tag.Negatable; neg == "_" {
			spell += ", --no-" + f.Name
		} else if neg != "" {
			spell += ", --" + neg
		}
		def := ""
		if f.HasDefault && f.Default != "" {
			def = "`" + f.Default + "`"
		}
		ew.printf("| `%s` | %s | %s |\n", spell, def, cell(f.Help+enumNote(f.Value)))
	}
	ew.printf("\n")
}

// enumNote names the accepted values when the help does not already.
func enumNote(v *kong.Value) string {
	if v.Enum == "" {
		return ""
	}
	var vals []string
	for _, e := range v.EnumSlice() {
		if e != "" {
			vals = append(vals, e)
		}
	}
	missing := false
	for _, e := range vals {
		if !strings.Contains(v.Help, e) {
			missing = true
		}
	}
	if !missing {
		return ""
	}
	return " One of: " + strings.Join(vals, ", ") + "."
}

// detail renders a command's Help() text: paragraphs as they are, the
// indented blocks (examples) as fenced shell code.
func detail(ew *errWriter, text string) {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	inCode := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		indented := strings.HasPrefix(l, "    ") || strings.HasPrefix(l, "\t")
		switch {
		case indented && !inCode:
			ew.printf("```sh\n")
			inCode = true
		case !indented && inCode && strings.TrimSpace(l) == "" && i+1 < len(lines) && isIndented(lines[i+1]):
			ew.printf("\n") // a blank line inside an example block
			continue
		case !indented && inCode:
			ew.printf("```\n")
			inCode = false
		}
		if inCode {
			l = strings.TrimPrefix(strings.TrimPrefix(l, "\t"), "    ")
		}
		ew.printf("%s\n", strings.TrimRight(l, " "))
	}
	if inCode {
		ew.printf("```\n")
	}
	ew.printf("\n")
}

func isIndented(l string) bool { return strings.HasPrefix(l, "    ") || strings.HasPrefix(l, "\t") }

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// anchor is the id GitHub gives a heading.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
