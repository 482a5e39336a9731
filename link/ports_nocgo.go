//go:build darwin && !cgo

package link

import "errors"

// PortInfo is a serial port present on this machine (see ports.go).
type PortInfo struct {
	Path    string `json:"path"`
	USB     bool   `json:"usb"`
	VID     string `json:"vid,omitempty"`
	PID     string `json:"pid,omitempty"`
	Serial  string `json:"serial,omitempty"`
	Product string `json:"product,omitempty"`
}

// Ports needs IOKit on macOS, which a static (cgo-less) build cannot call.
func Ports() ([]PortInfo, error) {
	return nil, errors.New("this build cannot list ports on macOS (it needs cgo); ls /dev/cu.* shows them")
}
