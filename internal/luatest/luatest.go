// Package luatest runs Lua-side tests and Markdown examples as Go subtests.
//
// A Lua test file defines global functions whose names start with "Test";
// each runs as its own subtest and fails when it raises an error (usually
// from assert). Run calls them in a plain Lua state; a host with its own way
// of running Lua (a device and its scheduler) lists them with Funcs instead.
package luatest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// Run loads file into L and runs each global Test* function as a subtest.
func Run(t *testing.T, L *lua.LState, file string) {
	t.Helper()
	if err := L.DoFile(file); err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	var names []string
	L.G.Global.ForEach(func(k, v lua.LValue) {
		name, ok := k.(lua.LString)
		if !ok || !strings.HasPrefix(string(name), "Test") {
			return
		}
		if _, isFn := v.(*lua.LFunction); isFn {
			names = append(names, string(name))
		}
	})
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatalf("%s defines no Test* functions", file)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			fn := L.GetGlobal(name)
			top := L.GetTop()
			defer L.SetTop(top)
			L.Push(fn)
			if err := L.PCall(0, 0, nil); err != nil {
				t.Error(err)
			}
		})
	}
}

// Funcs lists, sorted, the global Test* functions a Lua file defines at its
// top level (function TestX() or TestX = function()), without running it:
// for files whose code only works inside a host that calls each test itself.
func Funcs(file string) ([]string, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read lua tests: %w", err)
	}
	chunk, err := parse.Parse(bytes.NewReader(src), file)
	if err != nil {
		return nil, fmt.Errorf("parse lua tests: %w", err)
	}
	var names []string
	add := func(target, fn ast.Expr) {
		id, ok := target.(*ast.IdentExpr)
		if _, isFn := fn.(*ast.FunctionExpr); ok && isFn && strings.HasPrefix(id.Value, "Test") {
			names = append(names, id.Value)
		}
	}
	for _, st := range chunk {
		switch st := st.(type) {
		case *ast.FuncDefStmt:
			if st.Name.Receiver == nil {
				add(st.Name.Func, st.Func)
			}
		case *ast.AssignStmt:
			for i, lhs := range st.Lhs {
				if i < len(st.Rhs) {
					add(lhs, st.Rhs[i])
				}
			}
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s defines no Test* functions", file)
	}
	sort.Strings(names)
	return names, nil
}

// Example is one fenced lua block from a Markdown file, with the text block
// that follows it (if any), which holds its expected output.
type Example struct {
	Line   int    // line of the opening fence
	Code   string // the Lua source
	Output string // expected print output; "" when none was given
}

// Examples extracts the ```lua blocks of a Markdown file. A ```text block
// directly after a lua block (blank lines allowed) is its expected output.
func Examples(path string) ([]Example, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read examples: %w", err)
	}
	var out []Example
	var cur *strings.Builder
	lang := ""
	start := 0
	lastLua := -1 // index in out of a lua block awaiting its output block
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if cur == nil {
			if strings.HasPrefix(trim, "```") {
				lang = strings.TrimSpace(strings.TrimPrefix(trim, "```"))
				cur = &strings.Builder{}
				start = n
				continue
			}
			if trim != "" {
				lastLua = -1
			}
			continue
		}
		if trim == "```" {
			switch {
			case lang == "lua":
				out = append(out, Example{Line: start, Code: cur.String()})
				lastLua = len(out) - 1
			case lang == "text" && lastLua >= 0:
				out[lastLua].Output = cur.String()
				lastLua = -1
			default:
				lastLua = -1
			}
			cur = nil
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: unterminated code block", path, start)
	}
	return out, sc.Err()
}

// RunExamples runs every lua example in the Markdown file at path in a fresh
// state from newState, comparing what it prints with its expected output.
func RunExamples(t *testing.T, path string, newState func() *lua.LState) {
	t.Helper()
	exs, err := Examples(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) == 0 {
		t.Fatalf("%s has no lua examples", path)
	}
	for _, ex := range exs {
		t.Run(fmt.Sprintf("line%d", ex.Line), func(t *testing.T) {
			L := newState()
			defer L.Close()
			var got strings.Builder
			L.SetGlobal("print", L.NewFunction(func(L *lua.LState) int {
				for i := 1; i <= L.GetTop(); i++ {
					if i > 1 {
						got.WriteByte('\t')
					}
					got.WriteString(L.ToStringMeta(L.Get(i)).String())
				}
				got.WriteByte('\n')
				return 0
			}))
			if err := L.DoString(ex.Code); err != nil {
				t.Fatalf("%s:%d: %v", path, ex.Line, err)
			}
			if ex.Output != "" && got.String() != ex.Output {
				t.Errorf("%s:%d: printed\n%s\nwant\n%s", path, ex.Line, got.String(), ex.Output)
			}
		})
	}
}
