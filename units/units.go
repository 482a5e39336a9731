// Package units reads the sizes, rates and durations users type on the
// command line: 64KiB, 10MB/s, 250ms, 2 (seconds).
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Size is a byte count that reads 512, 64KiB, 1MiB, 10MB or 1.5GB.
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	// Longest suffixes first so "KiB" is not read as "B".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

// ParseSize reads a size such as 512, 64KiB, 1MiB or 10MB.
func ParseSize(s string) (Size, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 || n*mult > 1<<62 {
		return 0, fmt.Errorf("bad size %q (want a byte count like 512, 64KiB, 1MiB or 10MB)", s)
	}
	return Size(n * mult), nil
}

// UnmarshalText lets flag parsers read a Size.
func (z *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	*z = v
	return err
}

func (z Size) String() string { return FormatSize(int64(z)) }

// FormatSize prints n bytes the way a person reads them: 512B, 64KiB, 1.5MiB.
func FormatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + string("KMGTP"[exp]) + "iB"
}

// Rate is a throughput in bytes per second: 10MB/s, 64KiB/s, 1000 (bytes/s).
type Rate float64

// ParseRate reads a rate such as 10MB/s or 64KiB/s.
func ParseRate(s string) (Rate, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(t, "/s")
	z, err := ParseSize(t)
	if err != nil || z == 0 {
		return 0, fmt.Errorf("bad rate %q (want bytes per second like 10MB/s or 64KiB/s)", s)
	}
	return Rate(z), nil
}

// UnmarshalText lets flag parsers read a Rate.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	*r = v
	return err
}

func (r Rate) String() string { return FormatSize(int64(r)) + "/s" }

// Duration is a time.Duration that also reads a bare number as seconds.
type Duration time.Duration

// ParseDuration reads 250ms, 2s, 1m30s, or a bare number of seconds (1.5).
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(t, 64); err == nil && f >= 0 {
		// "inf" and 1e300 parse as floats but overflow into a negative Duration.
		if f*float64(time.Second) >= math.MaxInt64 {
			return 0, fmt.Errorf("bad duration %q (too long)", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(t)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q (want 250ms, 2s, 1m or a number of seconds)", s)
	}
	return d, nil
}

// UnmarshalText lets flag parsers read a Duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	*d = Duration(v)
	return err
}

func (d Duration) String() string { return time.Duration(d).String() }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
