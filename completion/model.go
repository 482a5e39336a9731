// Package completion writes shell completion scripts for a kong command
// line: bash, zsh, fish and powershell. The scripts are generated from the
// kong model (commands, flags, short forms, enum values, positional
// arguments), so they cannot fall behind the CLI they complete.
//
// How a value completes is read from the model: `enum` tags give the
// values, `type:"existingfile"` and friends give files, and a
// `predictor:"NAME"` tag names one of the Predictors passed in Options
// (framing specs, addresses, *.lua files...).
package completion

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/alecthomas/kong"
)

// Predictor says how the value of a flag or argument completes.
type Predictor struct {
	// Words are the fixed candidates. A word ending in ':' or '/' is a
	// prefix (delim:, tcp://): the shell adds no space after it.
	Words []string
	// Files, when set, completes file names matching this glob ("*" for
	// any file, "*.lua"); directories are always offered to descend into.
	Files string
	// Dirs completes directory names only.
	Dirs bool
	// After a word starting with one of these prefixes (lua:, unix://),
	// the rest of the word completes as a file matching the glob.
	Prefixes []Prefix
}

// Prefix is a word prefix followed by a file name.
type Prefix struct{ Prefix, Files string }

func (p *Predictor) empty() bool {
	return p == nil || len(p.Words) == 0 && p.Files == "" && !p.Dirs && len(p.Prefixes) == 0
}

// key identifies a predictor's content, so scripts define each one once.
func (p *Predictor) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q %q %v", p.Words, p.Files, p.Dirs)
	for _, x := range p.Prefixes {
		fmt.Fprintf(&b, " %q=%q", x.Prefix, x.Files)
	}
	return b.String()
}

// Options configure the generator.
type Options struct {
	// Predictors are looked up by the `predictor` tag of a flag or
	// argument. A tag naming no predictor here is an error.
	Predictors map[string]Predictor
}

// Command is one node of the command tree, as the scripts see it.
type Command struct {
	Name    string
	Aliases []string
	Path    string // space-separated names below the root; "" for the root
	Help    string // one line
	Subs    []*Command
	Flags   []*Flag // every flag understood here, the ancestors' included
	Args    []*Arg
}

// Flag is a flag as typed: long names, an optional short form, and how
// its value completes (Value nil: it takes no value).
type Flag struct {
	Names  []string // "--frame", "-f", "--no-color": every spelling
	Long   string   // the main long name, without dashes
	Short  rune
	Help   string
	Takes  bool       // the next word (or what follows '=') is its value
	Repeat bool       // may be given more than once
	Place  string     // placeholder for the value: SPEC, FILE
	Value  *Predictor // nil when there is nothing to suggest
}

// Arg is a positional argument.
type Arg struct {
	Name   string
	Help   string
	Repeat bool
	Value  *Predictor
}

// Build reads the kong model into the command tree the scripts are
// written from.
func Build(app *kong.Application, opts Options) (*Command, error) {
	return build(app.Node, nil, "", opts)
}

func build(n *kong.Node, inherited []*Flag, path string, opts Options) (*Command, error) {
	c := &Command{Name: n.Name, Aliases: n.Aliases, Path: path, Help: firstLine(n.Help)}
	c.Flags = append(c.Flags, inherited...)
	for _, f := range n.Flags {
		if f.Hidden {
			continue
		}
		flag, err := buildFlag(f, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", strings.TrimSpace("command "+path), err)
		}
		c.Flags = append(c.Flags, flag)
	}
	for _, p := range n.Positional {
		pred, err := predictor(p, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: argument %s: %w", strings.TrimSpace("command "+path), p.Name, err)
		}
		c.Args = append(c.Args, &Arg{Name: p.Name, Help: firstLine(p.Help), Repeat: p.IsCumulative(), Value: pred})
	}
	for _, child := range n.Children {
		if child.Hidden || child.Type != kong.CommandNode {
			continue // branching arguments are not part of wirecat's model
		}
		sub, err := build(child, c.Flags, strings.TrimSpace(path+" "+child.Name), opts)
		if err != nil {
			return nil, err
		}
		c.Subs = append(c.Subs, sub)
	}
	return c, nil
}

func buildFlag(f *kong.Flag, opts Options) (*Flag, error) {
	flag := &Flag{Long: f.Name, Short: f.Short, Help: firstLine(f.Help)}
	flag.Names = append(flag.Names, "--"+f.Name)
	for _, a := range f.Aliases {
		flag.Names = append(flag.Names, "--"+a)
	}
	if f.Short != 0 {
		flag.Names = append(flag.Names, "-"+string(f.Short))
	}
	switch neg := f.Tag.Negatable; neg {
	case "":
	case "_": // kong's default negation
		flag.Names = append(flag.Names, "--no-"+f.Name)
	default:
		flag.Names = append(flag.Names, "--"+neg)
	}
	flag.Repeat = f.IsCumulative() || f.IsCounter()
	if f.IsBool() || f.IsCounter() {
		return flag, nil
	}
	flag.Takes = true
	flag.Place = f.FormatPlaceHolder()
	if strings.HasPrefix(flag.Place, `"`) { // kong shows a quoted default: name the value instead
		flag.Place = strings.ToUpper(f.Name)
	}
	pred, err := predictor(f.Value, opts)
	if err != nil {
		return nil, fmt.Errorf("flag --%s: %w", f.Name, err)
	}
	flag.Value = pred
	return flag, nil
}

// predictor decides how a value completes: the predictor tag first, then
// enum values, then the file types kong knows.
func predictor(v *kong.Value, opts Options) (*Predictor, error) {
	if name := v.Tag.Get("predictor"); name != "" {
		p, ok := opts.Predictors[name]
		if !ok {
			known := make([]string, 0, len(opts.Predictors))
			for k := range opts.Predictors {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("unknown predictor %q (known: %s)", name, strings.Join(known, ", "))
		}
		return &p, nil
	}
	if v.Enum != "" {
		var words []string
		for _, w := range v.EnumSlice() {
			if w != "" { // an empty enum value means "not given"
				words = append(words, w)
			}
		}
		return &Predictor{Words: words}, nil
	}
	switch v.Tag.Type {
	case "existingfile", "path", "file", "filecontent":
		return &Predictor{Files: "*"}, nil
	case "existingdir":
		return &Predictor{Dirs: true}, nil
	}
	return nil, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Shells are the shells Write knows.
var Shells = []string{"bash", "zsh", "fish", "powershell"}

// Write writes the completion script for shell, for the program named
// root.Name.
func Write(w io.Writer, shell string, root *Command) error {
	var s string
	switch shell {
	case "bash":
		s = bashScript(root)
	case "zsh":
		s = zshScript(root)
	case "fish":
		s = fishScript(root)
	case "powershell", "pwsh":
		s = powershellScript(root)
	default:
		return fmt.Errorf("unknown shell %q: want one of %s", shell, strings.Join(Shells, ", "))
	}
	_, err := io.WriteString(w, s)
	return err
}

// walk visits c and every command below it, parents first.
func (c *Command) walk(fn func(*Command)) {
	fn(c)
	for _, s := range c.Subs {
		s.walk(fn)
	}
}

// predictors lists the distinct predictors in the tree, in a stable
// order, so each script defines each one once and names it by index.
func (c *Command) predictors() ([]*Predictor, map[string]int) {
	var list []*Predictor
	index := map[string]int{}
	add := func(p *Predictor) {
		if p.empty() {
			return
		}
		if _, ok := index[p.key()]; !ok {
			index[p.key()] = len(list)
			list = append(list, p)
		}
	}
	c.walk(func(c *Command) {
		for _, f := range c.Flags {
			add(f.Value)
		}
		for _, a := range c.Args {
			add(a.Value)
		}
	})
	return list, index
}

// isPrefix reports whether a candidate is only the start of a word.
func isPrefix(w string) bool { return strings.HasSuffix(w, ":") || strings.HasSuffix(w, "/") }

// ident turns a program name into something every shell takes as a
// function name.
func ident(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
