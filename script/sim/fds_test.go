//go:build unix

package sim

import (
	"strings"
	"testing"
)

func TestDescriptorWarning(t *testing.T) {
	for _, tc := range []struct {
		devices int
		sink    bool
		limit   uint64
		open    int
		fit     string // "" when the fleet fits
	}{
		{19000, false, 20000, 40, ""},
		{19000, true, 20000, 40, "about 9980 devices"},
		{19960, false, 20000, 40, ""},
		{19961, false, 20000, 40, "about 19960 devices"},
		{25000, false, 20000, 40, "about 19960 devices"},
		{10000, true, 20000, 40, "about 9980 devices"},
		{9980, true, 20000, 40, ""},
		{5, false, 20, 40, "about 0 devices"},
	} {
		got := descriptorWarning(tc.devices, tc.sink, tc.limit, tc.open)
		if tc.fit == "" {
			if got != "" {
				t.Errorf("%+v: warned %q", tc, got)
			}
			continue
		}
		if !strings.Contains(got, tc.fit) || !strings.Contains(got, "may open 20") || !strings.Contains(got, "too many open files") {
			t.Errorf("%+v: %q, want %q and the limit", tc, got, tc.fit)
		}
	}
	if w := DescriptorWarning(1, true); w != "" {
		t.Errorf("one device warned: %q", w)
	}
}
