package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

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

// PortsCmd is `wirecat ports`.
type PortsCmd struct {
	Output string `short:"o" enum:"text,json" default:"text" placeholder:"FORMAT" help:"text: a table; json: one object a line (path, usb, vid, pid, serial, product)."`
}

func (c *PortsCmd) Help() string {
	return `Lists the serial ports present: path, USB VID:PID, serial number and
product, as arduino-cli board list does; a port that is not USB shows "-".
Nothing found prints nothing on stdout and says so on stderr (exit 0).
Ptys are not ports: wirecat's own (pty:) are printed where they are made.

Examples:

    wirecat ports
    wirecat ports -o json | jq -r 'select(.vid == "2341") | .path'  # Arduinos`
}

func (c *PortsCmd) Run(app *App) error {
	ports, err := link.Ports()
	if err != nil {
		return fmt.Errorf("listing serial ports: %w", err)
	}
	if len(ports) == 0 && c.Output == "text" {
		fmt.Fprintln(app.Stderr, "wirecat: no serial ports found")
		return nil
	}
	return writePorts(app.Stdout, ports, c.Output)
}

// writePorts prints ports as a table or as JSON lines.
func writePorts(w io.Writer, ports []link.PortInfo, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, p := range ports {
			if err := enc.Encode(p); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tVID:PID\tSERIAL\tPRODUCT")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, p := range ports {
		id := "-"
		if p.USB {
			id = p.VID + ":" + p.PID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Path, id, dash(p.Serial), dash(p.Product))
	}
	return tw.Flush()
}
