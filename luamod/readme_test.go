package luamod_test

import (
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/internal/luatest"
	"github.com/wirecat-dev/wirecat/luamod/bit"
	"github.com/wirecat-dev/wirecat/luamod/json"
	"github.com/wirecat-dev/wirecat/luamod/pack"
)

func TestREADMEExamples(t *testing.T) {
	luatest.RunExamples(t, "README.md", func() *lua.LState {
		L := lua.NewState()
		pack.Open(L)
		bit.Open(L)
		json.Open(L)
		return L
	})
}
