package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/link"
)

// TestWritePorts: the table and the JSON lines `wirecat ports` prints.
func TestWritePorts(t *testing.T) {
	ports := []link.PortInfo{
		{Path: "/dev/ttyACM0", USB: true, VID: "2341", PID: "0043", Serial: "75830303934351D0C1A1", Product: "Arduino Uno"},
		{Path: "/dev/ttyS0"},
	}
	var b bytes.Buffer
	writePorts(&b, ports, "text")
	want := "PATH          VID:PID    SERIAL                PRODUCT\n" +
		"/dev/ttyACM0  2341:0043  75830303934351D0C1A1  Arduino Uno\n" +
		"/dev/ttyS0    -          -                     -\n"
	if b.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	writePorts(&b, ports, "json")
	want = `{"path":"/dev/ttyACM0","usb":true,"vid":"2341","pid":"0043","serial":"75830303934351D0C1A1","product":"Arduino Uno"}` + "\n" +
		`{"path":"/dev/ttyS0","usb":false}` + "\n"
	if b.String() != want {
		t.Errorf("json:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestPortsRuns: the real listing runs on this machine, whatever it finds.
func TestPortsRuns(t *testing.T) {
	out, stderr, code := runWirecat(t, "", 10*time.Second, "ports", "-o", "json")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, %q", code, stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" && !strings.HasPrefix(line, `{"path":"/dev/`) {
			t.Errorf("line %q", line)
		}
	}
}
