package chaos

// Review of issue 9 item 2: one message whose view is larger than the
// view's queue (1 MiB; a 300 KiB message under -o hex renders 1.3 MB) must
// be shown to a stdout that keeps up, and must not turn the view off for
// the rest of the run, nor be blamed on stdout.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

func TestRelayViewLargeMessage(t *testing.T) {
	port := e2e.FreePort(t)
	p := e2e.Start(t, "wirecat", "relay", fmt.Sprintf("127.0.0.1:%d", port), echoServer(t), "-o", "hex", "--frame", "line")
	e2e.WaitListen(t, port)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReaderSize(c, 1<<20)
	big := strings.Repeat("L", 300<<10) + "\n"
	if _, err := io.WriteString(c, big); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rd, make([]byte, len(big))); err != nil {
		t.Fatalf("echo of the large line: %v", err)
	}
	for i := range 5 {
		fmt.Fprintf(c, "small %d\n", i)
		if _, err := rd.ReadString('\n'); err != nil {
			t.Fatalf("echo of small line %d: %v", i, err)
		}
	}
	// Both directions of all six messages are shown.
	e2e.WaitFor(t, 5*time.Second, "the view of every message", func() bool {
		out := p.Stdout.String()
		return strings.Count(out, " 307200 bytes\n") == 2 && strings.Count(out, " 7 bytes\n") == 10
	})
	p.Signal(syscall.SIGTERM, time.Second)
	if stderr := p.Stderr.String(); strings.Contains(stderr, "dropped") {
		t.Errorf("a view line dropped into a stdout that keeps up:\n%s", stderr)
	}
}
