package script

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/luatest"
)

// luaTestTimeout bounds one Lua test: its device is stopped after it.
const luaTestTimeout = 5 * time.Second

// luaTestEnv is the fleet a Lua test's device believes it is in.
func luaTestEnv() *Env {
	return &Env{Count: 3, Seed: 7, Args: map[string]string{"name": "board", "rate": "5"}}
}

// TestLua runs each global Test* function of testdata/*_test.lua as a
// subtest, each in a fresh device (device 2 of 3, seed 7) through the
// scheduler, so a test may sleep, start timers and use the network.
func TestLua(t *testing.T) {
	files, err := filepath.Glob("testdata/*_test.lua")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Lua tests: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), "_test.lua"), func(t *testing.T) {
			names, err := luatest.Funcs(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range names {
				t.Run(name, func(t *testing.T) {
					if _, err := runLuaFunc(t, file, name, 2, luaTestEnv()); err != nil {
						t.Error(err)
					}
				})
			}
		})
	}
}

// runLuaFunc runs the global function name of a Lua file as device id: the
// file's chunk, then a call of name, as one program. It returns what the
// device printed; log output is shown with -v.
func runLuaFunc(t *testing.T, file, name string, id int, env *Env) (string, error) {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The call goes after the file's lines, which keep their numbers.
	src = append(src, "\n"+name+"()\n"...)
	p, err := Compile(filepath.Base(file), src)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuf
	env.Stdout, env.Stderr = &out, &errOut
	ctx, cancel := contextTimeout(luaTestTimeout)
	defer cancel()
	err = p.Run(ctx, id, env)
	if s := errOut.String(); s != "" {
		t.Logf("stderr:\n%s", s)
	}
	if errors.Is(err, ErrStopped) {
		err = errors.New("still running after " + luaTestTimeout.String() + ": a wait without a timeout, or a timer or listener left open")
	}
	return out.String(), err
}

// Two devices with the same seed and id draw the same numbers; another id
// draws others.
func TestLuaRandomAcrossDevices(t *testing.T) {
	const file = "testdata/device_test.lua"
	draws := func(id int) string {
		out, err := runLuaFunc(t, file, "RandomDraws", id, luaTestEnv())
		if err != nil || strings.Count(out, "\t") != 2 {
			t.Fatalf("device %d printed %q: %v", id, out, err)
		}
		return out
	}
	a, b, c := draws(2), draws(2), draws(3)
	if a != b {
		t.Errorf("same seed and id: %q then %q", a, b)
	}
	if a == c {
		t.Errorf("devices 2 and 3 both drew %q", a)
	}
}
