package main

import (
	"os"
	"strings"
	"time"

	"github.com/wirecat-dev/wirecat/session"
)

// openRecording starts the --record session file.
func openRecording(d *DataFlags, app *App) (*session.Writer, error) {
	host, _ := os.Hostname()
	frame := d.Frame
	if frame == "" {
		frame = "raw"
	}
	v, _, _ := buildInfo()
	return session.Create(d.Record, session.Header{
		Command: strings.Join(os.Args[1:], " "),
		Frame:   frame,
		Start:   time.Now(),
		Host:    host,
		Writer:  "wirecat " + v,
	})
}
