package progress_test

import (
	"fmt"
	"os"
	"time"

	"github.com/wirecat-dev/wirecat/progress"
)

func ExampleTotals() {
	fmt.Println(progress.Totals(1<<30, 12, 2300*time.Millisecond))
	// Output: sent 1.0 GiB, received 12 B in 2.3s (445 MiB/s)
}

// A transfer path counts what it moves; the meter draws on stderr only
// when enabled (stderr a terminal, no -q) and the transfer lasts.
func ExampleMeter() {
	m := progress.New(os.Stderr, false)
	m.Sent().Add(512)
	m.Received().Add(2048)
	m.Done()
	sent, received := m.Bytes()
	fmt.Println(sent, received)
	// Output: 512 2048
}
