package relay

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/wirecat-dev/wirecat/diag"
	"github.com/wirecat-dev/wirecat/internal/testpeer"
	"github.com/wirecat-dev/wirecat/proto"
)

// A relay forwards the exact bytes whatever the framing cuts them into
// (issue 9): random bytes, every value, CR and LF included, with a small
// --max-frame so oversized and malformed frames happen, with a view, and
// with a hook that leaves messages as they are.
func TestRelayForwardsExactBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(rng.UintN(256))
		if rng.IntN(50) == 0 {
			data[i] = "\r\n\xc0\xdb\x00"[rng.IntN(5)]
		}
	}
	hooks, err := NewHooks("same.lua", []byte(`function on_message(conn, dir, msg) return msg end`), &diag.Log{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hooks.Close)
	for _, spec := range []string{"line", "crlf", "delim:END", "len:u16be", "slip", "cobs", "fixed:100"} {
		for _, withHooks := range []bool{false, true} {
			name := spec
			if withHooks {
				name += "/hooks"
			}
			t.Run(name, func(t *testing.T) {
				target := testpeer.TCP(t, testpeer.Echo)
				f, err := proto.Parse(spec, nil)
				if err != nil {
					t.Fatal(err)
				}
				cfg := Config{Target: mustParse(t, "tcp://"+target), Framer: f, MaxFrame: 1000, Sink: &recorder{}}
				if withHooks {
					cfg.Hooks = hooks
				}
				addr, _ := startRelay(t, "tcp://127.0.0.1:0", cfg)
				got := roundTrip(t, dial(t, "tcp", addr), data)
				if !bytes.Equal(got, data) {
					t.Fatalf("%d bytes sent, %d came back; first difference at %d", len(data), len(got), diffAt(got, data))
				}
			})
		}
	}
}

func diffAt(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
