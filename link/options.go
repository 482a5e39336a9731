package link

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
	// Log receives diagnostics meant for stderr, one line each, without a
	// trailing newline and without the "wirecat: " prefix (the caller adds it).
	Log func(format string, args ...any)
}

func (o *Options) logf(format string, args ...any) {
	if o != nil && o.Log != nil {
		o.Log(format, args...)
	}
}
