package main

import (
	"errors"

	"github.com/wirecat-dev/wirecat/link"
)

// SerialFlags shape serial: addresses on every command that opens one.
type SerialFlags struct {
	Baud int `group:"Serial" placeholder:"N" help:"serial: addresses: the rate when the address names none (serial:/dev/ttyUSB0?baud=N wins); default 115200."`
}

// apply sets the serial options.
func (s *SerialFlags) apply(o *link.Options) error {
	if s.Baud < 0 {
		return usage(errors.New("--baud must be a rate, e.g. 9600 or 115200"))
	}
	o.Baud = s.Baud
	return nil
}
