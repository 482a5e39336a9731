package relay

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/wirecat-dev/wirecat/diag"
)

func TestExampleHookScriptRewritesDropsAndSplits(t *testing.T) {
	var log syncBuf
	h, err := LoadHooks("../scripts/hooks-upper.lua", &diag.Log{W: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	target := lineServer(t)
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Framer: lineFramer(t), Hooks: h, Log: &diag.Log{W: &log}})
	c := dial(t, "tcp", addr)
	fmt.Fprintf(c, "hello\ndrop\na|b|c\nlast\n")
	c.(*net.TCPConn).CloseWrite()
	var got []string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	if fmt.Sprint(got) != "[HELLO A B C LAST]" {
		t.Fatalf("echo through the hooks = %q", got)
	}
	waitFor(t, "on_close", func() bool { return strings.Contains(log.String(), "after 4 client messages") })
	if !strings.Contains(log.String(), "hooks-upper.lua: open #") {
		t.Fatalf("log %q: on_open's print is missing", log.String())
	}
}

func hooksFrom(t *testing.T, src string, log *syncBuf) *Hooks {
	t.Helper()
	h, err := NewHooks("hooks.lua", []byte(src), &diag.Log{W: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func TestHookErrorStopsThatConnectionsHooksOnly(t *testing.T) {
	var log syncBuf
	h := hooksFrom(t, `
function on_message(conn, dir, msg)
  if msg == "boom" then error("kaboom") end
  return "<" .. msg .. ">"
end
`, &log)
	target := lineServer(t)
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Framer: lineFramer(t), Hooks: h, Log: &diag.Log{W: &log}})

	bad := dial(t, "tcp", addr)
	badRd := bufio.NewReader(bad)
	fmt.Fprintf(bad, "a\n")
	if line, _ := badRd.ReadString('\n'); line != "<<a>>\n" {
		t.Fatalf("before the error: %q (hooks run both ways)", line)
	}
	fmt.Fprintf(bad, "boom\n")
	if line, _ := badRd.ReadString('\n'); line != "boom\n" {
		t.Fatalf("the failing message went on as %q, want it unmodified", line)
	}
	fmt.Fprintf(bad, "b\n")
	if line, _ := badRd.ReadString('\n'); line != "b\n" {
		t.Fatalf("after the error: %q, want unmodified", line)
	}
	if !strings.Contains(log.String(), "hooks.lua:3: kaboom") {
		t.Fatalf("log %q does not name script:line", log.String())
	}
	good := dial(t, "tcp", addr)
	fmt.Fprintf(good, "c\n")
	if line, _ := bufio.NewReader(good).ReadString('\n'); line != "<<c>>\n" {
		t.Fatalf("another connection: %q, its hooks should still run", line)
	}
}

func TestHookResults(t *testing.T) {
	var log syncBuf
	h := hooksFrom(t, `
function on_message(conn, dir, msg)
  if dir == "server" then return msg end
  if msg == "same" then return end
  if msg == "none" then return false end
  if msg == "empty" then return {} end
  if msg == "num" then return 42 end
  if msg == "list" then return {"x", 1} end
  return msg
end
`, &log)
	target := lineServer(t)
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Framer: lineFramer(t), Hooks: h, Log: &diag.Log{W: &log}})
	c := dial(t, "tcp", addr)
	fmt.Fprintf(c, "same\nnone\nempty\nend\n")
	rd := bufio.NewReader(c)
	for _, want := range []string{"same\n", "end\n"} {
		if line, _ := rd.ReadString('\n'); line != want {
			t.Fatalf("got %q, want %q", line, want)
		}
	}
	fmt.Fprintf(c, "num\n")
	rd.ReadString('\n')
	if !strings.Contains(log.String(), "returned a number") {
		t.Fatalf("log %q", log.String())
	}
	c2 := dial(t, "tcp", addr)
	fmt.Fprintf(c2, "list\n")
	bufio.NewReader(c2).ReadString('\n')
	if !strings.Contains(log.String(), "item 2 of the returned list is a number") {
		t.Fatalf("log %q", log.String())
	}
}

func TestHookRunawayIsStopped(t *testing.T) {
	var log syncBuf
	h := hooksFrom(t, `function on_message(conn, dir, msg) while true do end end`, &log)
	target := lineServer(t)
	addr, _ := startRelay(t, "tcp://127.0.0.1:0", Config{Target: mustParse(t, "tcp://"+target), Framer: lineFramer(t), Hooks: h, Log: &diag.Log{W: &log}})
	c := dial(t, "tcp", addr)
	fmt.Fprintf(c, "x\n")
	if line, _ := bufio.NewReader(c).ReadString('\n'); line != "x\n" {
		t.Fatalf("got %q", line)
	}
	if !strings.Contains(log.String(), "still running after 20ms") {
		t.Fatalf("log %q", log.String())
	}
}

func TestBadHookScripts(t *testing.T) {
	for src, want := range map[string]string{
		"function on_message(\n":               "hooks.lua: ",
		"x = = 1":                              "hooks.lua:1:",
		"local a = 1":                          "defines none of on_open, on_message, on_close",
		"function on_open() end\nerror('top')": "hooks.lua:2: top",
	} {
		_, err := NewHooks("hooks.lua", []byte(src), &diag.Log{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewHooks(%q) = %v; want an error with %q", src, err, want)
		}
	}
	_, err := LoadHooks("does-not-exist.lua", &diag.Log{})
	if !errors.Is(err, ErrBadScript) {
		t.Errorf("missing script: %v, want ErrBadScript", err)
	}
}
