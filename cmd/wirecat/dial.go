package main

import (
	"fmt"
	"strconv"

	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/units"
)

// DialFlags are understood by every command that connects (nc's -w and -s).
type DialFlags struct {
	Timeout units.Duration `short:"w" placeholder:"DUR" help:"Give up connecting after DUR: resolving, the TCP and the TLS handshakes (default: the system's, about 2 minutes). With --retry, each attempt."`
	Source  string         `short:"s" placeholder:"ADDR[:PORT]" help:"Connect from this local address, and port if given (e.g. 127.0.0.2, [::1]:4000)."`
	HealFlags
}

// HealFlags are the retries and the proxy of every command that connects.
type HealFlags struct {
	Retry string `placeholder:"N|forever" help:"Try a failed connect N more times (or forever), waiting 100ms, 200ms, 400ms... up to 5s between attempts, each wait drawn at random from its upper half; -v shows each attempt. E.g. --retry 5."`
	Proxy string `placeholder:"URL" help:"Connect through a proxy: socks5://[user:pass@]host:port or http://[user:pass@]host:port (HTTP CONNECT); TCP, TLS and WebSocket only. Default: ALL_PROXY (HTTPS_PROXY first for tls:// and wss://) unless NO_PROXY names the host or it is loopback; none: ignore those. E.g. --proxy socks5://127.0.0.1:1080."`
}

// apply checks the flags and sets them on o, for connections to addr.
func (d *DialFlags) apply(app *App, o *link.Options, addr link.Addr) error {
	if d.Timeout < 0 {
		return usage(fmt.Errorf("--timeout must be positive"))
	}
	o.Timeout = d.Timeout.D()
	if err := d.HealFlags.apply(app, o, addr); err != nil {
		return err
	}
	if d.Source == "" {
		return nil
	}
	if addr.IsUnix() {
		return usage(fmt.Errorf("--source %s: %s has no source address (it needs tcp, udp or tls)", d.Source, addr))
	}
	if _, _, err := link.ParseSource(d.Source); err != nil {
		return usage(fmt.Errorf("--source: %w", err))
	}
	o.Source = d.Source
	return nil
}

// apply sets --retry and the proxy for addr on o.
func (h *HealFlags) apply(app *App, o *link.Options, addr link.Addr) error {
	n, err := h.retries()
	if err != nil {
		return err
	}
	o.Retry = n
	choose, err := h.proxies(app)
	if err != nil {
		return err
	}
	if h.Proxy != "" && h.Proxy != "none" && addr.Scheme != "" && !addr.OverTCP() {
		return usage(fmt.Errorf("--proxy carries TCP, TLS and WebSocket connections, not %s", addr.Scheme))
	}
	o.Proxy, err = choose(addr)
	return err
}

// retries reads --retry: 0 when not given, link.RetryForever for forever.
func (h *HealFlags) retries() (int, error) {
	switch h.Retry {
	case "":
		return 0, nil
	case "forever":
		return link.RetryForever, nil
	}
	n, err := strconv.Atoi(h.Retry)
	if err != nil || n < 0 {
		return 0, usage(fmt.Errorf("--retry %q: want a count of retries (0, 5...) or forever", h.Retry))
	}
	return n, nil
}

// proxies is the proxy for each address dialed: --proxy's, or the
// environment's (see link.ProxyFor), or none with --proxy none.
func (h *HealFlags) proxies(app *App) (func(link.Addr) (*link.Proxy, error), error) {
	switch h.Proxy {
	case "none":
		return func(link.Addr) (*link.Proxy, error) { return nil, nil }, nil
	case "":
		return func(a link.Addr) (*link.Proxy, error) {
			p, err := link.ProxyFor(a, app.Getenv)
			if err != nil {
				return nil, usage(err)
			}
			return p, nil
		}, nil
	}
	p, err := link.ParseProxy(h.Proxy)
	if err != nil {
		return nil, usage(fmt.Errorf("--proxy: %w", err))
	}
	p.From = "--proxy"
	return func(a link.Addr) (*link.Proxy, error) {
		if !a.OverTCP() {
			return nil, nil
		}
		return p, nil
	}, nil
}
