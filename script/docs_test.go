package script

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
	"github.com/wirecat-dev/wirecat/internal/luatest"
)

// echoServer sends back whatever it receives.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestDocExamples(t *testing.T) {
	exs, err := luatest.Examples("../docs/lua.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) < 10 {
		t.Fatalf("found only %d examples", len(exs))
	}
	target := echoServer(t)
	var broker string // the mqtt examples' mosquitto, started for the first
	top := t
	for _, ex := range exs {
		t.Run("line"+strconv.Itoa(ex.Line), func(t *testing.T) {
			target := target
			if strings.Contains(strings.SplitN(ex.Code, "\n", 2)[0], "127.0.0.1:1883") {
				e2e.Need(t, "mosquitto")
				if broker == "" {
					broker = mosquitto(top)
				}
				target = broker
			}
			p, err := Compile("example.lua", []byte(ex.Code))
			if err != nil {
				t.Fatal(err)
			}
			var out, errOut syncBuf
			env := &Env{Count: 1, Seed: 1, Target: target, Stdout: &out, Stderr: &errOut}
			ctx, cancel := contextTimeout(3 * time.Second)
			defer cancel()
			if err := p.Run(ctx, 1, env); err != nil {
				t.Fatalf("%v\nstderr: %s", err, errOut.String())
			}
			if out.String() != ex.Output {
				t.Errorf("printed:\n%s\nwant:\n%s", out.String(), ex.Output)
			}
		})
	}
}
