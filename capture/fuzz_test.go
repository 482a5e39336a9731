package capture

import (
	"bytes"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
)

type discard struct{}

func (discard) Emit(*event.Event) error { return nil }

// Any bytes: Import ends with a result or an error, never a panic or a hang.
func FuzzImport(f *testing.F) {
	fr := newFrames(&testing.T{})
	fr.handshake()
	fr.tcp(true, cISN+1+6, "AP", "world\n")
	fr.tcp(true, cISN+1, "A", "hello ")
	fr.tcp(false, sISN+1, "R", "")
	f.Add(fr.buf.Bytes())
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		Import(r, func(time.Time) (event.Sink, error) { return discard{}, nil }, Options{})
	})
}
