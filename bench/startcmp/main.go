// Command startcmp compares the start-up of a few commands side by side on
// a shared, noisy machine. It runs them in rounds, each command once per
// round in a new random order, rather than all of A's runs then all of
// B's, so that a burst of load from elsewhere hits every command alike. It
// reports for each the median and 25th percentile of the wall time and of
// the CPU time (user + system, from wait4), which waiting for a busy core
// does not inflate.
//
// A program starts faster right after itself (its pages are still in the
// CPU's caches: 0.2–0.3 ms here), so give each program once (wirecat
// version and wirecat send in separate runs), or the order would credit
// the warm starts to it; the order is random for the same reason.
//
//	startcmp -n 500 './wirecat version' 'socat -V' ./hello
//
// Each command is split on spaces (no shell), leading NAME=VALUE words
// set its environment; its output goes to /dev/null and its exit status is
// ignored (send to a refused port exits 1).
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 300, "runs of each command")
	warm := flag.Int("warmup", 30, "unmeasured runs of each command first")
	flag.Parse()
	cmds := flag.Args()
	if len(cmds) == 0 {
		fmt.Fprintln(os.Stderr, "usage: startcmp [-n N] [-warmup N] 'CMD ARGS' ...")
		os.Exit(2)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "startcmp:", err)
		os.Exit(1)
	}
	wall := make([][]time.Duration, len(cmds))
	cpu := make([][]time.Duration, len(cmds))
	order := make([]int, len(cmds))
	for i := range order {
		order[i] = i
	}
	for i := range *warm + *n {
		rand.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, c := range order {
			line := cmds[c]
			w, u, err := run(strings.Fields(line), null)
			if err != nil {
				fmt.Fprintf(os.Stderr, "startcmp: %s: %v\n", line, err)
				os.Exit(1)
			}
			if i >= *warm {
				wall[c] = append(wall[c], w)
				cpu[c] = append(cpu[c], u)
			}
		}
	}
	fmt.Printf("%-40s %21s %21s\n", "", "wall median / p25", "cpu median / p25")
	for c, line := range cmds {
		fmt.Printf("%-40s %9s / %9s %9s / %9s\n", label(line),
			ms(quantile(wall[c], 0.5)), ms(quantile(wall[c], 0.25)),
			ms(quantile(cpu[c], 0.5)), ms(quantile(cpu[c], 0.25)))
	}
}

// run starts args once and returns its wall time and the CPU time (user +
// system) the kernel charged it.
func run(args []string, null *os.File) (wall, cpu time.Duration, err error) {
	var env []string
	for len(args) > 1 && strings.Contains(args[0], "=") {
		env, args = append(env, args[0]), args[1:]
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	_ = cmd.Wait() // a non-zero exit is part of what is measured
	wall = time.Since(start)
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return wall, 0, nil
	}
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return wall, cpu, nil
}

// label is line with its program's directory left out.
func label(line string) string {
	f := strings.Fields(line)
	for i, w := range f {
		if !strings.Contains(w, "=") {
			f[i] = filepath.Base(w)
			break
		}
	}
	return strings.Join(f, " ")
}

func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }
