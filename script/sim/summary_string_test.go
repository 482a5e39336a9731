package sim

import (
	"strings"
	"testing"
)

// The devices still running are said to have stopped at the deadline,
// or by what the caller names.
func TestSummaryStoppedBy(t *testing.T) {
	s := Summary{Devices: 3, Stopped: 2}
	if got := s.String(); !strings.Contains(got, ", 2 stopped at the deadline,") {
		t.Errorf("no StoppedBy: %q", got)
	}
	s.StoppedBy = "SIGINT"
	if got := s.String(); !strings.Contains(got, ", 2 stopped by SIGINT,") || strings.Contains(got, "deadline") {
		t.Errorf("StoppedBy SIGINT: %q", got)
	}
}
