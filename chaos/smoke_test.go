package chaos

import (
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// A listener waiting for its first peer ends within a second of SIGTERM.
func TestSignalIdleListener(t *testing.T) {
	port := e2e.FreePort(t)
	p := e2e.Start(t, "wirecat", "listen", "-k", "127.0.0.1:"+itoa(port))
	e2e.WaitListen(t, port)
	took := p.Signal(syscall.SIGTERM, time.Second)
	figure(t, "sigterm idle listen", "%v", took)
}
