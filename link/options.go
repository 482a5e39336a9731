package link

import "time"

// Options shape Dial, Listen and ListenPacket. A nil *Options is the zero value.
type Options struct {
	TLS TLSOptions
	// Broadcast lets UDP sockets send to broadcast addresses (SO_BROADCAST).
	// Off, it is cleared: Go enables it on every UDP socket, nc requires -b.
	Broadcast bool
	// Interface names the network interface for multicast: the one a group is
	// joined on, and the one a dialed group is sent out of. Empty: the system's
	// default (joins fall back to loopback when there is none).
	Interface string
	// Timeout bounds a Dial: resolving, connecting and the TLS handshake
	// (-w/--timeout). 0: only the caller's context.
	Timeout time.Duration
	// Source is the local address a Dial connects from (-s/--source):
	// ADDR or ADDR:PORT, see ParseSource.
	Source string
	// Baud is the serial port rate (--baud) when the address names none;
	// 0: DefaultBaud.
	Baud int
	// WaitDevice makes a serial listener whose device is missing or busy
	// wait for it (listen -k) instead of failing.
	WaitDevice bool
	// WS shapes ws:// and wss:// connections.
	WS WSOptions
	// DTLSIdle ends an association of a DTLS listener that nothing crossed
	// for this long (its reads then fail with ErrIdle): UDP has no end, and
	// a client that vanished without close_notify would hold its place for
	// good. 0: never. listen -k makes it --idle, or DefaultDTLSIdle.
	DTLSIdle time.Duration
	// Debug, when set, receives what -v shows (a WebSocket's close code and
	// reason), in the same shape as Log.
	Debug func(format string, args ...any)
	// Proxy is the SOCKS5 or HTTP proxy TCP and TLS dials go through (nil:
	// direct). The caller picks it: --proxy, or ProxyFor's environment.
	Proxy *Proxy
	// Retry is how many more times a failed Dial tries again, with
	// exponential backoff and jitter (RetryForever: until the context
	// ends). Timeout then bounds each attempt.
	Retry int
	// Backoff is the first wait between attempts (default 100ms); it doubles
	// up to BackoffMax (default 5s). Each wait is drawn at random from its
	// upper half, so clients that lost a server together do not come back
	// together.
	Backoff, BackoffMax time.Duration
	// Log receives diagnostics meant for stderr, one line each, without a
	// trailing newline and without the "wirecat: " prefix (the caller adds it).
	Log func(format string, args ...any)
}

// RetryForever is Options.Retry for --retry forever.
const RetryForever = -1

func (o *Options) logf(format string, args ...any) {
	if o != nil && o.Log != nil {
		o.Log(format, args...)
	}
}

func (o *Options) baud() int {
	if o == nil {
		return 0
	}
	return o.Baud
}

func (o *Options) debugf(format string, args ...any) {
	if o != nil && o.Debug != nil {
		o.Debug(format, args...)
	}
}
