package main

// The shard examples of simulate --help (docs/cli.md) and of docs/fleet.md's
// Shards section, run as printed (see docs_e2e_test.go).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

func init() {
	docCases = append(docCases, shardDocCases...)
}

var shardDocCases = []docCase{
	{
		name: "cli-simulate-shards",
		cmds: []string{"wirecat simulate scripts/thermo.lua --count 20000 --shard 0/2 --start-at 2026-11-29T21:30:00Z --ramp 20s --connect 10.0.0.5:5000"},
		run: func(e *docEnv, c []string) {
			// Both shards of the example, a twentieth of its size (the
			// full one with -docs.heavy), starting together in two seconds.
			count := 1000
			if *docsHeavy {
				count = 20000
			}
			e.sub("--count 20000", fmt.Sprintf("--count %d", count))
			e.sub("2026-11-29T21:30:00Z", time.Now().Add(2*time.Second).UTC().Format(time.RFC3339Nano))
			e.sub("--ramp 20s", "--ramp 2s")
			e.sub("10.0.0.5:5000", e.addr(5000))
			var mu sync.Mutex
			boards := map[string]bool{} // a board's first reading, by its address
			e.server(e.port(5000), func(c net.Conn) {
				r := bufio.NewReader(c)
				if _, err := r.ReadString(','); err == nil {
					mu.Lock()
					boards[c.RemoteAddr().String()] = true
					mu.Unlock()
				}
				io.Copy(io.Discard, r)
			})
			shards := []*proc{e.start(c[0], nil), e.start(strings.Replace(c[0], "--shard 0/2", "--shard 1/2", 1), nil)}
			waitFor(e.t, 120*time.Second, "every board's first reading", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(boards) >= count
			})
			for k, p := range shards {
				p.interrupt()
				p.wait(10 * time.Second)
				wantContains(e.t, "the summary", p.stderr.String(), "waiting until",
					fmt.Sprintf("shard %d/2: %d devices started", k, count/2))
			}
		},
	},
}
