package main

// The examples of docs/heal.md and of --retry, --reconnect and --proxy in
// the --help texts (docs/cli.md), run as printed (see docs_e2e_test.go).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

func init() {
	docFiles = append(docFiles, "docs/heal.md")
	docCases = append(docCases, healDocCases...)
}

var healDocCases = []docCase{
	{
		name: "heal-reconnect",
		cmds: []string{"wirecat connect --reconnect -v 127.0.0.1 5000"},
		run: func(e *docEnv, c []string) {
			t := e.t
			port := e.port(5000)
			e.sub("127.0.0.1 5000", fmt.Sprintf("127.0.0.1 %d", port))
			got := make(chan string, 4)
			// The "board" answers one line per connection and hangs up,
			// as if it rebooted.
			e.server(port, func(c net.Conn) {
				line, _ := bufio.NewReader(c).ReadString('\n')
				got <- line
				io.WriteString(c, "ok "+line)
			})
			in := &pipeIn{}
			p := e.start(c[0], in)
			for i, l := range []string{"one\n", "two\n"} {
				if i > 0 {
					// The board hung up: a line written before wirecat saw
					// it would go to the old connection (TCP's loss).
					p.waitStderr("connecting again in", 10*time.Second)
				}
				io.WriteString(in.w, l)
				select {
				case g := <-got:
					if g != l {
						t.Fatalf("the board got %q, want %q", g, l)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%q never arrived", l)
				}
			}
			in.w.Close()
			if code := p.wait(10 * time.Second); code != 0 || p.stdout.String() != "ok one\nok two\n" {
				t.Fatalf("exit %d, stdout %q", code, p.stdout)
			}
		},
	},
	{
		name: "heal-proxy",
		cmds: []string{"wirecat connect --proxy socks5://127.0.0.1:1080 10.0.0.7 502"},
		run: func(e *docEnv, c []string) {
			need(e.t, "microsocks")
			t := e.t
			socks := e.port(1080)
			e.start(fmt.Sprintf("microsocks -i 127.0.0.1 -p %d", socks), nil)
			waitListen(t, socks)
			board := freePort(t)
			e.sub("10.0.0.7 502", fmt.Sprintf("127.0.0.1 %d", board))
			e.server(board, func(c net.Conn) { io.WriteString(c, "modbus says hi\n") })
			// stdin stays open until the answer is in: microsocks ends both
			// sides when one half-closes.
			in := &pipeIn{}
			p := e.start(c[0], in)
			p.waitOutput("modbus says hi\n", 10*time.Second)
			in.w.Close()
			if code := p.wait(10 * time.Second); code != 0 || p.stdout.String() != "modbus says hi\n" {
				t.Fatalf("through the proxy: exit %d, %q", code, p.stdout)
			}
		},
	},
	{
		name: "heal-retry",
		cmds: []string{"wirecat send --retry 5 127.0.0.1:5000 'status?'", "wirecat relay 127.0.0.1:1502 127.0.0.1:502 --retry forever"},
		run: func(e *docEnv, c []string) {
			t := e.t
			port := e.port(5000)
			p := e.start(c[0], nil)
			time.Sleep(300 * time.Millisecond) // the board boots
			e.server(port, func(c net.Conn) {
				line := make([]byte, 7)
				io.ReadFull(c, line)
				io.WriteString(c, "ok "+string(line)+"\n")
			})
			if code := p.wait(15 * time.Second); code != 0 || p.stdout.String() != "ok status?\n" {
				t.Fatalf("send --retry: exit %d, stdout %q", code, p.stdout)
			}

			target := freePort(t)
			e.sub("127.0.0.1:502", fmt.Sprintf("127.0.0.1:%d", target))
			listen := e.port(1502)
			e.start(c[1], nil)
			waitListen(t, listen)
			cl := e.dial(listen)
			io.WriteString(cl, "early bytes")
			time.Sleep(300 * time.Millisecond) // the target is still down
			got := make(chan string, 1)
			e.server(target, func(c net.Conn) {
				b := make([]byte, 11)
				io.ReadFull(c, b)
				got <- string(b)
			})
			select {
			case g := <-got:
				if !strings.HasPrefix(g, "early bytes") {
					t.Fatalf("the target got %q", g)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the relay never reached the target")
			}
		},
	},
}
