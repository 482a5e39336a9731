package main

// The shard examples of simulate --help (docs/cli.md) and of docs/fleet.md's
// Shards section, run as printed (see docs_e2e_test.go).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/wirecat-dev/wirecat/script/sim"
)

func init() {
	docCases = append(docCases, shardDocCases...)
}

// noErrors is a shard summary's "no error" (the counter's name changed
// with the fleet's metrics).
var noErrors = regexp.MustCompile(`\b0 (connection )?errors\b`)

// fleetCommands are docs/fleet.md's Shards examples, as printed.
var fleetCommands = struct{ sink, at, shards, summary, apply, logs, waitFleet, merge, waitMerge, logsMerge, delete string }{
	sink:      "wirecat listen -k --frame delim:, --recv-only -q 127.0.0.1:5000 > /dev/null &",
	at:        "at=$(date -u -d '+5 seconds' +%Y-%m-%dT%H:%M:%SZ)",
	shards:    "seq 0 3 | xargs -P 4 -I {} wirecat simulate scripts/thermo.lua --count 20000 --shard {}/4 --start-at $at --ramp 20s --duration 60s --connect 127.0.0.1:5000 -s 127.0.0.2-127.0.0.9 --summary shard-{}.json",
	summary:   "wirecat summary shard-*.json --threshold 'connect.failed == 0'",
	apply:     `sed "s/START_AT/$(date -u -d '+2 min' +%Y-%m-%dT%H:%M:%SZ)/" deploy/kubernetes/fleet.yaml | kubectl apply -f -`,
	logs:      "kubectl logs -f -l app.kubernetes.io/component=fleet --prefix --max-log-requests 4",
	waitFleet: "kubectl wait --for=condition=complete --timeout=30m job/wirecat-fleet",
	merge:     "kubectl apply -f deploy/kubernetes/merge.yaml",
	waitMerge: "kubectl wait --for=condition=complete --timeout=2m job/wirecat-merge",
	logsMerge: "kubectl logs job/wirecat-merge",
	delete:    "kubectl delete job wirecat-fleet wirecat-merge",
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
	{
		name: "fleet-shards-one-machine",
		cmds: []string{fleetCommands.sink, fleetCommands.at, fleetCommands.shards, fleetCommands.summary},
		run: func(e *docEnv, c []string) {
			// A fiftieth of the fleet, over 1s of ramp and 3s of run.
			e.sub("--count 20000", "--count 400")
			e.sub("--ramp 20s", "--ramp 1s")
			e.sub("--duration 60s", "--duration 3s")
			e.sub("'+5 seconds'", "'+2 seconds'")
			e.start(c[0], nil)
			waitListen(e.t, e.port(5000))
			out, errOut, code := e.run(c[1]+"\n"+c[2], "", 30*time.Second)
			if code != 0 {
				e.t.Fatalf("exit %d: %s %s", code, out, errOut)
			}
			for k := range 4 {
				wantContains(e.t, "the shards' summaries", errOut, fmt.Sprintf("shard %d/4: 100 devices started", k))
			}
			if n := strings.Count(errOut, ", 0 failed,"); n != 4 {
				e.t.Errorf("%d shards without a failed device, want 4: %s", n, errOut)
			}
			if n := len(noErrors.FindAllString(errOut, -1)); n != 4 {
				e.t.Errorf("%d shards without an error, want 4: %s", n, errOut)
			}
			// The fleet's figures: 400 devices, every connect made.
			sum := e.mustRun(c[3], "")
			wantContains(e.t, "the merged summary", sum, "4 of 4 shards", "threshold connect.failed == 0: met")
			if !regexp.MustCompile(`devices\.started +400 `).MatchString(sum) {
				e.t.Errorf("the merged summary does not count 400 devices: %s", sum)
			}
		},
	},
	{
		// The sed before kubectl: the manifest kubectl gets is fleet.yaml
		// with a start two minutes ahead that --start-at takes.
		name: "fleet-kubernetes-start",
		cmds: []string{fleetCommands.apply},
		run: func(e *docEnv, c []string) {
			t := e.t
			root, _ := filepath.Abs(filepath.Join("..", ".."))
			if err := os.Symlink(filepath.Join(root, "deploy"), e.file("deploy")); err != nil {
				t.Fatal(err)
			}
			e.tool("kubectl", fmt.Sprintf("echo \"$*\" > %s\ncat > %s\n", e.file("kubectl.args"), e.file("applied.yaml")))
			before := time.Now()
			e.mustRun(c[0], "")
			if args := strings.TrimSpace(e.read("kubectl.args")); args != "apply -f -" {
				t.Errorf("kubectl got %q", args)
			}
			orig, err := os.ReadFile(filepath.Join(root, "deploy", "kubernetes", "fleet.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`--start-at=(\S+)`).FindStringSubmatch(e.read("applied.yaml"))
			if m == nil {
				t.Fatalf("no --start-at in what kubectl got:\n%s", e.read("applied.yaml"))
			}
			if got := strings.Replace(e.read("applied.yaml"), m[1], "START_AT", -1); got != string(orig) {
				t.Errorf("kubectl got more changes than the start: %q", got)
			}
			at, err := sim.ParseStartAt(m[1], time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if ahead := at.Sub(before); ahead < 110*time.Second || ahead > 125*time.Second {
				t.Errorf("--start-at=%s is %v ahead, want 2 minutes", m[1], ahead)
			}
		},
	},
	{
		name: "fleet-kubernetes-cluster",
		cmds: []string{fleetCommands.logs, fleetCommands.waitFleet, fleetCommands.merge, fleetCommands.waitMerge,
			fleetCommands.logsMerge, fleetCommands.delete},
		skip: "needs a Kubernetes cluster: go test ./deploy/ checks the manifests and runs their command lines here",
	},
}
