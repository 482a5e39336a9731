package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/wirecat-dev/wirecat/relay"
)

// FaultCmd is `wirecat fault`: the client of relay --control.
type FaultCmd struct {
	Control string `arg:"" placeholder:"CONTROL" predictor:"addr" help:"The relay's --control address, host:port."`
	Token   string `placeholder:"TOKEN" env:"WIRECAT_CONTROL_TOKEN" help:"The relay's --control-token."`
	Clear   bool   `help:"Take every fault off."`
	Conns   bool   `help:"List the relay's open connections instead."`
	Kill    uint64 `placeholder:"ID" help:"Reset connection ID (TCP RST to both ends)."`

	FaultFlags
}

func (c *FaultCmd) Help() string {
	return `Talks to a running relay's control API (relay --control ADDR). Without
fault flags it prints the faults in force, as flags; with fault flags they
become the relay's faults, replacing all others (give every fault you want
kept; --clear takes them all off). A change reaches connections already
open from their next message; a time given to --cut-after or --reset, only
connections opened from then on. --conns lists the open connections; --kill
resets one.

Examples:

    wirecat relay :7000 127.0.0.1:7001 --control 127.0.0.1:7070
    wirecat fault 127.0.0.1:7070                     # the faults now
    wirecat fault 127.0.0.1:7070 --delay up:200ms --drop 5%
    wirecat fault 127.0.0.1:7070 --clear
    wirecat fault 127.0.0.1:7070 --conns
    curl -s 127.0.0.1:7070/conns`
}

// FaultFlags are the faults of relay's command line, and of wirecat
// fault, which sets them on a running relay.
type FaultFlags struct {
	Delay     []string `group:"Faults" placeholder:"[up:|down:]DUR" help:"Delay each message. up: client→server, down: server→client, no prefix: both."`
	Jitter    []string `group:"Faults" placeholder:"[up:|down:]DUR" help:"Vary each delay by up to ± this much (at most --delay)."`
	Drop      []string `group:"Faults" placeholder:"[up:|down:]P" help:"Drop each message with probability P (0..1, or 0%..100%)."`
	Rate      []string `group:"Faults" placeholder:"[up:|down:]RATE" help:"Limit the throughput, e.g. 10KiB/s."`
	CutAfter  []string `group:"Faults" placeholder:"[up:|down:]DUR|SIZE" help:"Close the pair that long after it opened, or after that many bytes (both ways, or one)."`
	Reset     []string `group:"Faults" placeholder:"[up:|down:]DUR|SIZE|P" help:"Reset the pair (TCP RST to both) that long after it opened, after that many bytes one way, or on a message with probability P (0.05 or 5%)."`
	Blackhole []string `group:"Faults" placeholder:"up|down|both" help:"Swallow a direction: its bytes are read and never written, nor its end passed on."`
	Slice     []string `group:"Faults" placeholder:"[up:|down:]MIN-MAX[/PAUSE]" help:"Cut each write to a stream into pieces of a random size in MIN-MAX bytes, PAUSE apart (e.g. 1-16/1ms)."`
	Corrupt   []string `group:"Faults" placeholder:"[up:|down:]P" help:"Flip one random bit in a message with probability P."`
}

func (f *FaultFlags) specs() relay.FaultSpecs {
	return relay.FaultSpecs{Delay: f.Delay, Jitter: f.Jitter, Drop: f.Drop, Rate: f.Rate, CutAfter: f.CutAfter,
		Reset: f.Reset, Blackhole: f.Blackhole, Slice: f.Slice, Corrupt: f.Corrupt}
}

func (c *FaultCmd) Run(app *App, g *Globals) error {
	specs := c.specs()
	set := len(specs.Args()) > 0 || c.Clear
	switch {
	case set && (c.Conns || c.Kill != 0):
		return usage(errors.New("fault flags and --clear change faults; --conns and --kill are asked on their own"))
	case c.Conns && c.Kill != 0:
		return usage(errors.New("--conns and --kill: one at a time"))
	}
	if set {
		if _, err := relay.ParseFaults(specs); err != nil { // say it here, before the relay does
			return usage(err)
		}
	}
	method, path, body := "GET", "/faults", ""
	switch {
	case set:
		b, _ := json.Marshal(specs)
		method, body = "PUT", string(b)
	case c.Conns:
		path = "/conns"
	case c.Kill != 0:
		method, path = "DELETE", "/conns/"+strconv.FormatUint(c.Kill, 10)
	}
	out, err := controlRequest(app.Ctx, c.Control, c.Token, method, path, body)
	if err != nil {
		return err
	}
	switch {
	case c.Conns:
		var r struct{ Conns []relay.ConnInfo }
		if err := json.Unmarshal(out, &r); err != nil {
			return fmt.Errorf("control %s: %w", c.Control, err)
		}
		if len(r.Conns) == 0 {
			fmt.Fprintln(app.Stdout, "no open connections")
		}
		for _, x := range r.Conns {
			fmt.Fprintf(app.Stdout, "%d\t%s → %s\tfor %v\t%d bytes up, %d down\n", x.ID, x.Client, x.Target,
				time.Since(x.Since).Round(time.Second), x.UpBytes, x.DownBytes)
		}
	case c.Kill != 0:
		fmt.Fprintf(app.Stdout, "connection %d reset\n", c.Kill)
	default:
		var r struct {
			Args, Down string
		}
		if err := json.Unmarshal(out, &r); err != nil {
			return fmt.Errorf("control %s: %w", c.Control, err)
		}
		if r.Args == "" {
			r.Args = "no faults"
		}
		fmt.Fprintln(app.Stdout, r.Args)
		if r.Down != "" {
			fmt.Fprintln(app.Stdout, "down: "+r.Down)
		}
	}
	return nil
}

// controlRequest sends one request to a relay's control API and returns
// the body of a 200 answer; any other answer is an error with the relay's
// reason.
func controlRequest(ctx context.Context, addr, token, method, path, body string) ([]byte, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, hinted{fmt.Errorf("control %s: %w", addr, err), "is the relay running with --control " + addr + "?"}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, path, addr, auth, len(body), body)
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("control %s: no answer: %w", addr, err)
	}
	f := strings.Fields(status)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return nil, fmt.Errorf("control %s: not an HTTP answer: %.60q", addr, status)
	}
	code, _ := strconv.Atoi(f[1])
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("control %s: answer cut short", addr)
		}
		if strings.TrimSpace(h) == "" {
			break
		}
	}
	b, err := io.ReadAll(io.LimitReader(br, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("control %s: %w", addr, err)
	}
	if code != 200 {
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(status)
		}
		err := fmt.Errorf("control %s: %s", addr, e.Error)
		if code == 401 {
			return nil, hinted{err, "give the relay's --control-token with --token (or WIRECAT_CONTROL_TOKEN)"}
		}
		return nil, err
	}
	return b, nil
}
