package main

import (
	"fmt"

	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/units"
)

// DialFlags are understood by every command that connects (nc's -w and -s).
type DialFlags struct {
	Timeout units.Duration `short:"w" placeholder:"DUR" help:"Give up connecting after DUR: resolving, the TCP and the TLS handshakes (default: the system's, about 2 minutes)."`
	Source  string         `short:"s" placeholder:"ADDR[:PORT]" help:"Connect from this local address, and port if given (e.g. 127.0.0.2, [::1]:4000)."`
}

// apply checks the flags and sets them on o, for connections to addr.
func (d *DialFlags) apply(o *link.Options, addr link.Addr) error {
	if d.Timeout < 0 {
		return usage(fmt.Errorf("--timeout must be positive"))
	}
	o.Timeout = d.Timeout.D()
	if d.Source == "" {
		return nil
	}
	if addr.IsUnix() {
		return usage(fmt.Errorf("--source %s: %s has no source address (it needs tcp, udp or tls)", d.Source, addr))
	}
	if _, _, err := link.ParseSource(d.Source); err != nil {
		return usage(fmt.Errorf("--source: %w", err))
	}
	o.Source = d.Source
	return nil
}
