package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/scan"
)

// scan is `connect -z HOST PORTS`: which ports accept a connection.
func (c *ConnectCmd) scan(app *App, g *Globals) error {
	example := "wirecat connect -z 127.0.0.1 1-1024"
	if len(c.Port) == 0 {
		return usage(fmt.Errorf("-z needs HOST and PORTS (e.g. %s)", example))
	}
	spec := strings.Join(c.Port, ",")
	scheme, host, explicit := strings.Cut(c.Addr, "://")
	if !explicit {
		scheme, host = "tcp", c.Addr
	}
	switch scheme = strings.ToLower(scheme); {
	case c.UDP || strings.HasPrefix(scheme, "udp"):
		return usage(errors.New("-z tries TCP ports only: a UDP port that says nothing cannot be told from a closed one"))
	case scheme != "tcp" && scheme != "tcp4" && scheme != "tcp6" && scheme != "tls":
		return usage(fmt.Errorf("-z tries TCP ports, not %s (e.g. %s)", scheme, example))
	}
	if c.Exec != "" || c.Record != "" {
		return usage(errors.New("-z only tries ports: --exec and --record need a connection"))
	}
	if c.Retry != "" || c.Reconnect || c.Proxy != "" && c.Proxy != "none" {
		return usage(errors.New("-z tries each port once, directly: --retry, --reconnect and --proxy are for a connection"))
	}
	ports, err := scan.ParsePorts(spec)
	if err != nil {
		return usage(err)
	}
	if c.Timeout < 0 {
		return usage(errors.New("--timeout must be positive"))
	}
	var o scan.Options
	o.Timeout = c.Timeout.D()
	if c.Source != "" {
		h, p, err := link.ParseSource(c.Source)
		if err == nil && p != "0" {
			err = errors.New("-z connects from a new port each time: give an address without a port")
		}
		if err == nil {
			o.Source, err = netip.ParseAddr(h)
			if err != nil {
				err = fmt.Errorf("-z needs an IP address, not %q", h)
			}
		}
		if err != nil {
			return usage(fmt.Errorf("--source %s: %w", c.Source, err))
		}
	}
	ip, err := resolveOne(app, strings.Trim(host, "[]"), scheme, o.Source)
	if err != nil {
		return err
	}
	log := g.logger(app)
	start := time.Now()
	var counts [4]int
	enc := json.NewEncoder(app.Stdout)
	err = scan.Scan(app.Ctx, ip, ports, o, func(r scan.Result) {
		counts[r.State]++
		switch {
		case c.Output == "json":
			enc.Encode(struct {
				Host  string `json:"host"`
				Port  uint16 `json:"port"`
				State string `json:"state"`
			}{ip.String(), r.Port, r.State.String()})
		case r.State == scan.Open:
			fmt.Fprintf(app.Stdout, "%d open\n", r.Port)
		}
	})
	log.Debugf("tried %d ports of %s in %v: %d open, %d closed, %d no answer",
		counts[scan.Open]+counts[scan.Closed]+counts[scan.Silent], ip, time.Since(start).Round(time.Millisecond),
		counts[scan.Open], counts[scan.Closed], counts[scan.Silent])
	switch {
	case app.Ctx.Err() != nil:
		return nil // interrupted: the exit code says so
	case err != nil:
		return fmt.Errorf("scanning %s: %s", ip, link.Cause(err))
	case counts[scan.Open] == 0:
		return fmt.Errorf("no port of %s on %s accepts a connection", spec, ip)
	}
	return nil
}

// resolveOne finds the address to scan: the first the resolver gives, of
// the same IP version as source when one is given.
func resolveOne(app *App, host, scheme string, source netip.Addr) (netip.Addr, error) {
	if host == "" {
		return netip.Addr{}, usage(errors.New("-z needs a HOST (e.g. 127.0.0.1)"))
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, nil
	}
	network := "ip"
	switch {
	case strings.HasSuffix(scheme, "4"):
		network = "ip4"
	case strings.HasSuffix(scheme, "6"):
		network = "ip6"
	}
	ips, err := net.DefaultResolver.LookupNetIP(app.Ctx, network, host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("scanning %s: %s", host, link.Cause(err))
	}
	for _, ip := range ips {
		if !source.IsValid() || ip.Unmap().Is4() == source.Unmap().Is4() {
			return ip.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("scanning %s: it has no address of the same IP version as --source %s", host, source)
}
