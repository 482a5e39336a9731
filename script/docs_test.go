package script

import (
	"bufio"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

type docExample struct {
	line       int
	code, want string
}

// docExamples reads every ```lua block of a Markdown file and the ```text
// block right after it.
func docExamples(t *testing.T, path string) []docExample {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []docExample
	var cur *docExample
	var block strings.Builder
	in, kind, n := false, "", 0
	pendingText := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		l := sc.Text()
		switch {
		case !in && strings.HasPrefix(l, "```"):
			in, kind = true, strings.TrimPrefix(l, "```")
			block.Reset()
			if kind == "lua" {
				out = append(out, docExample{line: n})
				cur = &out[len(out)-1]
				pendingText = true
			} else if kind != "text" {
				pendingText = false
			}
		case in && l == "```":
			in = false
			if kind == "lua" {
				cur.code = block.String()
			} else if kind == "text" && pendingText {
				cur.want = block.String()
				pendingText = false
			}
		case in:
			block.WriteString(l + "\n")
		case strings.TrimSpace(l) != "":
			pendingText = false
		}
	}
	return out
}

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
	exs := docExamples(t, "../docs/lua.md")
	if len(exs) < 10 {
		t.Fatalf("found only %d examples", len(exs))
	}
	target := echoServer(t)
	for _, ex := range exs {
		t.Run("line"+strconv.Itoa(ex.line), func(t *testing.T) {
			p, err := Compile("example.lua", []byte(ex.code))
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
			if out.String() != ex.want {
				t.Errorf("printed:\n%s\nwant:\n%s", out.String(), ex.want)
			}
		})
	}
}
