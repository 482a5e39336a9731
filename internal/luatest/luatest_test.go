package luatest

import (
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

func TestExamples(t *testing.T) {
	exs, err := Examples("testdata/sample.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 2 {
		t.Fatalf("got %d examples, want 2", len(exs))
	}
	if exs[0].Line != 3 || exs[0].Code != "print(\"a\", 1)\n" || exs[0].Output != "a\t1\n" {
		t.Errorf("first example = %+v", exs[0])
	}
	if exs[1].Output != "" {
		t.Errorf("second example got output %q across prose", exs[1].Output)
	}
}

func TestRunExamples(t *testing.T) {
	RunExamples(t, "testdata/sample.md", func() *lua.LState { return lua.NewState() })
}

func TestRun(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	Run(t, L, "testdata/sample_test.lua") // runs TestOne before TestTwo, skips helper
}

func TestFuncs(t *testing.T) {
	got, err := Funcs("testdata/sample_test.lua")
	if err != nil {
		t.Fatal(err)
	}
	if want := "TestOne TestThree TestTwo"; strings.Join(got, " ") != want {
		t.Errorf("Funcs = %v, want %s", got, want)
	}
	if _, err := Funcs("testdata/sample.md"); err == nil {
		t.Error("Funcs of a file that is not Lua: no error")
	}
}
