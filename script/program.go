// Package script is wirecat's Lua runtime: a script is compiled once and run
// by any number of devices, each with its own Lua state and scheduler, and
// the modules a device script sees (net, timers, log, device, args, pack,
// bit, json). It also turns a framer script into a proto.Framer.
package script

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// ErrSyntax is matched (errors.Is) by every error that says a script does
// not compile; the CLI maps it to a usage error (exit 2).
var ErrSyntax = errors.New("lua syntax error")

// SyntaxError says where a script fails to compile.
type SyntaxError struct {
	Name string // script name as shown, e.g. thermo.lua
	Line int    // 0 when unknown
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Name, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Name, e.Msg)
}

// Unwrap makes errors.Is(err, ErrSyntax) hold.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// Program is a compiled script, shared read-only by every device that runs it.
type Program struct {
	Name string // chunk name used in error messages (the file's base name)
	Path string // file it came from, if any
	// Frame is the script's own framing, from a top-level FRAME = "spec"
	// (FrameLine is where): the default of its connections and of the
	// built-in sink. A lua:FILE in it is relative to the script's directory.
	Frame     string
	FrameLine int
	proto     *lua.FunctionProto
}

// Load reads and compiles a script file.
func Load(path string) (*Program, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read script: %w", err)
	}
	p, err := Compile(filepath.Base(path), src)
	if err != nil {
		return nil, err
	}
	p.Path = path
	if f, ok := strings.CutPrefix(p.Frame, "lua:"); ok && !filepath.IsAbs(f) {
		p.Frame = "lua:" + filepath.Join(filepath.Dir(path), f)
	}
	return p, nil
}

// Compile parses and compiles src once; name appears in error messages.
func Compile(name string, src []byte) (*Program, error) {
	src = skipShebang(src)
	chunk, err := parse.Parse(bytes.NewReader(src), name)
	if err != nil {
		var pe *parse.Error
		if errors.As(err, &pe) {
			msg := strings.TrimSpace(pe.Message)
			line := pe.Pos.Line
			if line == parse.EOF {
				line = bytes.Count(bytes.TrimRight(src, "\n"), []byte("\n")) + 1
				msg += " at end of file"
			} else if pe.Token != "" {
				msg += fmt.Sprintf(" near '%s'", pe.Token)
			}
			return nil, &SyntaxError{Name: name, Line: line, Msg: msg}
		}
		return nil, &SyntaxError{Name: name, Msg: strings.TrimSpace(err.Error())}
	}
	proto, err := lua.Compile(chunk, name)
	if err != nil {
		var ce *lua.CompileError
		if errors.As(err, &ce) {
			return nil, &SyntaxError{Name: name, Line: ce.Line, Msg: ce.Message}
		}
		return nil, &SyntaxError{Name: name, Msg: err.Error()}
	}
	p := &Program{Name: name, proto: proto}
	if err := p.declared(chunk); err != nil {
		return nil, err
	}
	return p, nil
}

// declared reads what a script declares for wirecat before any device runs
// it: a FRAME assigned a string literal at the top level. FRAME assigned
// anything else there is an error, since wirecat could not read it.
func (p *Program) declared(chunk []ast.Stmt) error {
	for _, st := range chunk {
		as, ok := st.(*ast.AssignStmt)
		if !ok {
			continue
		}
		for i, lhs := range as.Lhs {
			if id, ok := lhs.(*ast.IdentExpr); !ok || id.Value != "FRAME" {
				continue
			}
			var lit *ast.StringExpr
			if i < len(as.Rhs) {
				lit, _ = as.Rhs[i].(*ast.StringExpr)
			}
			if lit == nil || len(as.Rhs) != len(as.Lhs) {
				return &SyntaxError{Name: p.Name, Line: st.Line(), Msg: `FRAME must be a framing spec in quotes, as in FRAME = "line": wirecat reads it before the script runs`}
			}
			p.Frame, p.FrameLine = lit.Value, st.Line()
		}
	}
	return nil
}

// skipShebang blanks a leading #! line, keeping line numbers right.
func skipShebang(src []byte) []byte {
	if !bytes.HasPrefix(src, []byte("#!")) {
		return src
	}
	i := bytes.IndexByte(src, '\n')
	if i < 0 {
		return nil
	}
	return src[i:]
}
