package oneproc

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// atStart is GOMAXPROCS as this test binary's own start-up left it. Read
// in an init function: package variables are set before any init runs, and
// the package's init (oneproc.go) runs before this file's.
var atStart int

func init() { atStart = runtime.GOMAXPROCS(0) }

func TestLoweredThenRestored(t *testing.T) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		t.Skip("GOMAXPROCS is set: TestEnvironmentKept covers that case")
	}
	if atStart != 1 || !lowered {
		t.Fatalf("at start GOMAXPROCS = %d (lowered %v), want 1", atStart, lowered)
	}
	Done()
	got := runtime.GOMAXPROCS(0)
	// What the runtime would have chosen: the default, recomputed.
	runtime.SetDefaultGOMAXPROCS()
	if want := runtime.GOMAXPROCS(0); got != want {
		t.Fatalf("after Done GOMAXPROCS = %d, want the default %d", got, want)
	}
	if runtime.NumCPU() > 1 && got == 1 {
		t.Logf("GOMAXPROCS is 1 after Done with %d CPUs: a CPU limit of 1 (cgroup)?", runtime.NumCPU())
	}
	Done() // a second call changes nothing
	if now := runtime.GOMAXPROCS(0); now != got {
		t.Fatalf("a second Done changed GOMAXPROCS from %d to %d", got, now)
	}
}

// TestEnvironmentKept runs this test binary again with GOMAXPROCS=3: init
// must leave it, and Done too.
func TestEnvironmentKept(t *testing.T) {
	if os.Getenv("ONEPROC_CHILD") != "" {
		Done()
		os.Stdout.WriteString("procs " + strconv.Itoa(atStart) + " " + strconv.Itoa(runtime.GOMAXPROCS(0)) + "\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEnvironmentKept$", "-test.v")
	cmd.Env = append(os.Environ(), "GOMAXPROCS=3", "ONEPROC_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "procs 3 3\n") {
		t.Fatalf("with GOMAXPROCS=3 the child reports (want procs 3 3, at start and after Done):\n%s", out)
	}
}
