package link

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTTY(t *testing.T) {
	tests := []struct {
		in    string
		want  Addr
		canon string
	}{
		{"serial:/dev/ttyUSB0", Addr{Scheme: "serial", Path: "/dev/ttyUSB0"}, "serial:///dev/ttyUSB0"},
		{"serial:///dev/ttyUSB0", Addr{Scheme: "serial", Path: "/dev/ttyUSB0"}, "serial:///dev/ttyUSB0"},
		{"SERIAL:/dev/ttyACM0?BAUD=9600", Addr{Scheme: "serial", Path: "/dev/ttyACM0", Query: "baud=9600"}, "serial:///dev/ttyACM0?baud=9600"},
		{"serial:/dev/ttyS0?flow=rtscts&stop=2&parity=E&bits=7&baud=19200", Addr{Scheme: "serial", Path: "/dev/ttyS0", Query: "baud=19200&bits=7&parity=even&stop=2&flow=rtscts"},
			"serial:///dev/ttyS0?baud=19200&bits=7&parity=even&stop=2&flow=rtscts"},
		{"serial:tty.rel", Addr{Scheme: "serial", Path: "tty.rel"}, "serial://tty.rel"},
		{"pty:", Addr{Scheme: "pty"}, "pty:"},
		{"pty://", Addr{Scheme: "pty"}, "pty:"},
		{"pty:/tmp/ttyV0", Addr{Scheme: "pty", Path: "/tmp/ttyV0"}, "pty:///tmp/ttyV0"},
		{"pty:///tmp/ttyV0", Addr{Scheme: "pty", Path: "/tmp/ttyV0"}, "pty:///tmp/ttyV0"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in, true)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || got.String() != tt.canon {
				t.Fatalf("Parse(%q) = %+v %q, want %+v %q", tt.in, got, got.String(), tt.want, tt.canon)
			}
			if !got.Stream() || got.Packet() || !got.IsTTY() || !IsLoopback(got) {
				t.Errorf("%q: want a local stream", tt.in)
			}
			if back, err := Parse(got.String(), false); err != nil || back != got {
				t.Errorf("reparse %q = %+v, %v", got.String(), back, err)
			}
		})
	}
}

func TestParseTTYErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"serial:", "missing device"},
		{"serial:///dev/", "is a directory"},
		{"serial:/dev/x?baud=fast", `baud "fast" is not a rate`},
		{"serial:/dev/x?baud=0", `baud "0" is not a rate`},
		{"serial:/dev/x?bits=9", "want 5, 6, 7 or 8"},
		{"serial:/dev/x?parity=mark", "mark and space are not supported"},
		{"serial:/dev/x?stop=1.5", "want 1 or 2"},
		{"serial:/dev/x?flow=dtr", "want none, rtscts or xonxoff"},
		{"serial:/dev/x?speed=9600", `unknown option "speed" (want baud, bits, parity, stop, flow)`},
		{"serial:/dev/x?baud", `option "baud" needs a value`},
		{"serial:/dev/x?baud=1&baud=2", "given twice"},
		{"pty:/tmp/x?baud=9600", "a pty takes no options"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in, false)
			if !errors.Is(err, ErrBadAddr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) = %v, want an error containing %q", tt.in, err, tt.want)
			}
		})
	}
	if _, err := JoinHostPort("serial:/dev/x", "1", false); err == nil || !strings.Contains(err.Error(), "has a path, not a port") {
		t.Errorf("JoinHostPort(serial) = %v", err)
	}
}

func TestSerialBaud(t *testing.T) {
	a, _ := Parse("serial:/dev/x", false)
	if got := a.Serial(0); got != (SerialConfig{Baud: DefaultBaud, Bits: 8, Parity: "none", Stop: 1, Flow: "none"}) {
		t.Errorf("defaults = %+v", got)
	}
	if got := a.Serial(9600).Baud; got != 9600 {
		t.Errorf("--baud 9600 gave %d", got)
	}
	b, _ := Parse("serial:/dev/x?baud=57600", false)
	if got := b.Serial(9600).Baud; got != 57600 {
		t.Errorf("the address's baud should beat --baud, got %d", got)
	}
}
