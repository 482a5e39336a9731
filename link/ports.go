//go:build !darwin || cgo

package link

import (
	"sort"

	"go.bug.st/serial/enumerator"
)

// PortInfo is a serial port present on this machine, as `wirecat ports`
// lists it. The USB fields are empty for a port that is not USB.
type PortInfo struct {
	Path    string `json:"path"`
	USB     bool   `json:"usb"`
	VID     string `json:"vid,omitempty"` // hex, lower case: 2341
	PID     string `json:"pid,omitempty"`
	Serial  string `json:"serial,omitempty"`
	Product string `json:"product,omitempty"`
}

// Ports lists the serial ports present (go.bug.st/serial's enumerator:
// sysfs on Linux, IOKit on macOS, SetupAPI on Windows), sorted by path.
func Ports() ([]PortInfo, error) {
	list, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, err
	}
	out := make([]PortInfo, 0, len(list))
	for _, p := range list {
		out = append(out, PortInfo{Path: p.Name, USB: p.IsUSB, VID: lower(p.VID), PID: lower(p.PID), Serial: p.SerialNumber, Product: p.Product})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
