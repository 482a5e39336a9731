// Package coap is the CoAP (RFC 7252) message codec behind the Lua coap
// module: messages over UDP encoded and decoded with plgd-dev/go-coap/v3's
// message codec (its udp/coder and message packages only: they import the
// standard library, x/exp/constraints and go-coap's small helpers, none of
// its client, server or DTLS stack), plus block-wise (RFC 7959 Block2)
// numbers and the unknown critical option check.
package coap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// Message is a CoAP message.
type Message = message.Message

// Message types.
const (
	CON = message.Confirmable
	NON = message.NonConfirmable
	ACK = message.Acknowledgement
	RST = message.Reset
)

// Option numbers used here.
const (
	Observe       = message.Observe
	URIPath       = message.URIPath
	URIQuery      = message.URIQuery
	ContentFormat = message.ContentFormat
	Block2        = message.Block2
)

// maxOptions bounds the options of one message.
const maxOptions = 64

// Decode decodes one datagram.
func Decode(b []byte) (*Message, error) {
	m := &Message{Options: make(message.Options, 0, 8)}
	for {
		_, err := coder.DefaultCoder.Decode(b, m)
		if errors.Is(err, message.ErrOptionsTooSmall) && cap(m.Options) < maxOptions {
			m.Options = make(message.Options, 0, 2*cap(m.Options))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("coap: malformed message: %w", err)
		}
		return m, nil
	}
}

// Encode encodes m.
func Encode(m *Message) ([]byte, error) {
	n, err := coder.DefaultCoder.Size(*m)
	if err != nil {
		return nil, fmt.Errorf("coap: %w", err)
	}
	b := make([]byte, n)
	if _, err := coder.DefaultCoder.Encode(*m, b); err != nil {
		return nil, fmt.Errorf("coap: %w", err)
	}
	return b, nil
}

// UnknownCritical is the first critical option (an odd number) of m this
// codec does not know, which the receiver must not ignore (RFC 7252 5.4.1).
func UnknownCritical(m *Message) (message.OptionID, bool) {
	for _, o := range m.Options {
		if _, known := message.CoapOptionDefs[o.ID]; !known && o.ID%2 == 1 {
			return o.ID, true
		}
	}
	return 0, false
}

// CodeString is a code as "2.05".
func CodeString(c codes.Code) string { return fmt.Sprintf("%d.%02d", c>>5, c&0x1f) }

// ParseCode reads "2.05" (or 205) as a code.
func ParseCode(s string) (codes.Code, error) {
	if a, b, ok := strings.Cut(s, "."); ok {
		x, err1 := strconv.Atoi(a)
		y, err2 := strconv.Atoi(b)
		if err1 == nil && err2 == nil && x >= 0 && x < 8 && y >= 0 && y < 32 {
			return codes.Code(x<<5 | y), nil
		}
	} else if n, err := strconv.Atoi(s); err == nil && n >= 0 && n < 800 && n%100 < 32 {
		return codes.Code(n/100<<5 | n%100), nil
	}
	return 0, fmt.Errorf("coap: %q is not a response code (2.05, 404...)", s)
}

// Method codes by name.
var Methods = map[string]codes.Code{"GET": codes.GET, "POST": codes.POST, "PUT": codes.PUT, "DELETE": codes.DELETE}

// MethodName is a request code's name, "" for a code that is no method.
func MethodName(c codes.Code) string {
	for k, v := range Methods {
		if v == c {
			return k
		}
	}
	return ""
}

// Block is a Block2 option's value: block number, more flag, size 2^(4+szx).
func Block(num uint32, more bool, szx uint32) uint32 {
	v := num<<4 | szx
	if more {
		v |= 8
	}
	return v
}

// BlockOf reads a Block2 option's value.
func BlockOf(v uint32) (num uint32, more bool, size int) {
	return v >> 4, v&8 != 0, 1 << (4 + v&7)
}
