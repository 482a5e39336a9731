package script

import (
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/link"
)

// parseWS runs parseWSOpts on the Lua table expression src.
func parseWS(t *testing.T, src string) (link.WSOptions, error) {
	t.Helper()
	L := lua.NewState()
	defer L.Close()
	var ws link.WSOptions
	L.SetGlobal("parse", L.NewFunction(func(L *lua.LState) int {
		parseWSOpts(L, L.CheckTable(1), &ws)
		return 0
	}))
	err := L.DoString("parse(" + src + ")")
	return ws, err
}

func TestWSOptsPing(t *testing.T) {
	for src, want := range map[string]time.Duration{
		"{}":             0,
		"{ping = 0}":     0,
		"{ping = 0.01}":  10 * time.Millisecond,
		"{ping = 30}":    30 * time.Second,
		"{ping = 86400}": 24 * time.Hour,
	} {
		ws, err := parseWS(t, src)
		if err != nil || ws.Ping != want {
			t.Errorf("%s: ping %v (%v), want %v", src, ws.Ping, err, want)
		}
	}
	for _, src := range []string{"{ping = -1}", "{ping = 1e-6}", "{ping = 0/0}", "{ping = 1/0}", "{ping = 86401}", `{ping = "5"}`} {
		if _, err := parseWS(t, src); err == nil || !strings.Contains(err.Error(), "ping must") {
			t.Errorf("%s: %v, want the ping refused", src, err)
		}
	}
}
