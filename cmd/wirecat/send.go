package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/pipe"
	"github.com/wirecat-dev/wirecat/proto"
	"github.com/wirecat-dev/wirecat/units"
)

// SendCmd is `wirecat send`.
type SendCmd struct {
	Addr      string         `arg:"" placeholder:"ADDR" predictor:"addr" help:"Where to send: [scheme://]host:port."`
	Msgs      []string       `arg:"" optional:"" placeholder:"MSG" help:"Messages to send, with \\n \\r \\t \\0 \\\\ \\xHH escapes. Without them: --file, or stdin."`
	File      string         `short:"f" placeholder:"FILE" type:"existingfile" help:"Send the contents of FILE (read like stdin, with -i)."`
	Literal   bool           `help:"Send MSG arguments as written, without escapes."`
	Hex       bool           `help:"MSG arguments are hex bytes: '01 02 ff' or 0102ff."`
	Wait      units.Duration `default:"1s" placeholder:"DUR" help:"After the last message, read replies until this long passes with nothing arriving (default 1s; 0: exit right after sending, or wait 1s for --replies/--until)."`
	Replies   int            `placeholder:"N" help:"Exit as soon as N messages arrived; exit 3 if they do not."`
	Until     string         `placeholder:"TEXT" help:"Exit as soon as TEXT was received (escapes allowed); exit 3 if it was not."`
	Interval  units.Duration `placeholder:"DUR" help:"Pause between messages."`
	Repeat    int            `default:"1" placeholder:"N" help:"Send the messages N times."`
	HalfClose bool           `help:"Shut down the write side (TCP half-close) after the last message, for servers that answer at the end of input."`
	UDP       bool           `short:"u" help:"Read a scheme-less address as UDP."`
	Broadcast bool           `help:"Allow sending to broadcast addresses."`
	Interface string         `placeholder:"NAME" help:"Multicast: the network interface datagrams to a group leave by (default: the system's choice)."`
	DialFlags
	DataFlags
	InputFlags
	TLSFlags
	SerialFlags
}

func (c *SendCmd) Help() string {
	return `Sends messages, then prints replies until the peer closes or --wait passes
with nothing arriving. Exits 0 on success, 1 on a network failure, 2 on a
usage error (a missing --file too), 3 when --replies or --until is not met.
Over UDP each reply datagram prints on a line of its own (a newline is added
to one that has none; -o raw prints the bytes exactly). With a delimiter
framing, a message that contains the delimiter is refused: the peer would read
it as two.

Examples:

    wirecat send 127.0.0.1:5000 'Hello, server!'
    wirecat send 127.0.0.1:80 'GET / HTTP/1.0\r\n\r\n'
    wirecat send -u 127.0.0.1:5005 --hex '01 02 ff'
    wirecat send 127.0.0.1:5000 --frame line 'LED ON' --until 'LED is ON'
    wirecat send 127.0.0.1:5000 --frame delim:, '23.5:41' --repeat 10 \
        --interval 1s
    sensor-dump | wirecat send tcp://127.0.0.1:5000 --wait 0`
}

func (c *SendCmd) Run(app *App, g *Globals) error {
	addr, err := parseAddr(c.Addr, c.UDP)
	if err != nil {
		return err
	}
	if c.Repeat < 1 {
		return usage(fmt.Errorf("--repeat must be 1 or more"))
	}
	if c.File != "" && len(c.Msgs) > 0 {
		return usage(fmt.Errorf("give messages either as arguments or with --file, not both"))
	}
	p, err := plumb(app, g, &c.DataFlags, c.DataFlags.bothWays())
	if err != nil {
		return err
	}
	defer p.Close()
	p.separateDatagrams(&c.DataFlags, addr)
	until, err := c.until()
	if err != nil {
		return err
	}
	src, err := c.source(app, p.cfg.Framer)
	if err != nil {
		return err
	}
	opts := p.linkOptions(&c.TLSFlags, c.Broadcast)
	opts.Interface = c.Interface
	if err := c.SerialFlags.apply(opts); err != nil {
		return err
	}
	if err := c.DialFlags.apply(app, opts, addr); err != nil {
		return err
	}
	conn, err := link.Dial(app.Ctx, addr, opts)
	if err != nil {
		return netError(err)
	}
	m := pipe.Meta{ID: pipe.NextID(), Transport: addr.Transport(), Local: conn.LocalAddr().String(),
		Remote: conn.RemoteAddr().String(), Role: event.Client}
	x := pipe.Expect{Interval: c.Interval.D(), Wait: c.Wait.D(), Replies: c.Replies, Until: until, HalfClose: c.HalfClose}
	start := time.Now()
	out, err := pipe.Send(app.Ctx, conn, m, p.cfg, src, x)
	if err != nil {
		return connError(addr.String(), err)
	}
	if sig, ok := signalled(app.Ctx); ok && out.Interrupted && !x.Met(out) {
		// Not a timeout: say what was cut short (the exit code is the signal's).
		return interruptedError{fmt.Errorf("%s: %s", sig.how(), unmetWhat(c, out))}
	}
	p.log.Debugf("%s, %s in %v", count(out.Replies, "reply", "replies"), count(int(out.Bytes), "byte", "bytes"), time.Since(start).Round(time.Millisecond))
	switch {
	case out.Replies < c.Replies:
		return unmetError{fmt.Errorf("expected %s, got %d (%s)", count(c.Replies, "reply", "replies"), out.Replies, why(out, x))}
	case len(until) > 0 && !out.Found:
		return unmetError{fmt.Errorf("%q was not received (%s)", c.Until, why(out, x))}
	}
	return nil
}

// unmetWhat says what a send interrupted before its expectation had got.
func unmetWhat(c *SendCmd, out pipe.Outcome) string {
	if out.Replies < c.Replies {
		return fmt.Sprintf("got %d of the %s expected", out.Replies, count(c.Replies, "reply", "replies"))
	}
	return fmt.Sprintf("%q was not received", c.Until)
}

func why(out pipe.Outcome, x pipe.Expect) string {
	if out.PeerClosed {
		return "the peer closed"
	}
	return fmt.Sprintf("nothing more arrived within --wait %v", x.Wait)
}

func (c *SendCmd) until() ([]byte, error) {
	if c.Until == "" {
		return nil, nil
	}
	if c.Literal {
		return []byte(c.Until), nil
	}
	b, err := proto.Unescape(c.Until)
	if err != nil {
		return nil, usage(fmt.Errorf("--until %q: %w", c.Until, err))
	}
	return b, nil
}

// source is what to send: the arguments, the file, or stdin.
func (c *SendCmd) source(app *App, f proto.Framer) (pipe.Source, error) {
	if len(c.Msgs) > 0 {
		msgs := make([]pipe.Message, len(c.Msgs))
		for i, arg := range c.Msgs {
			payload, err := c.decode(arg)
			if err != nil {
				return nil, usage(fmt.Errorf("message %d %q: %w", i+1, arg, err))
			}
			wire, err := f.Encode(nil, payload)
			if err != nil {
				return nil, usage(fmt.Errorf("message %d: %w", i+1, err))
			}
			msgs[i] = pipe.Message{Payload: payload, Wire: wire}
		}
		return pipe.Messages(msgs, c.Repeat), nil
	}
	var r io.Reader = app.Stdin
	if c.File != "" {
		file, err := os.Open(c.File)
		if err != nil {
			return nil, inputFileError(err)
		}
		r = file // closed at exit
	}
	in, err := pipe.NewInput(r, c.InputFlags.mode(&c.DataFlags), f)
	if err != nil {
		return nil, usage(err)
	}
	if c.Repeat == 1 {
		return in, nil
	}
	// Repeating needs every message kept.
	var msgs []pipe.Message
	for {
		m, err := in.Next()
		if err == io.EOF {
			return pipe.Messages(msgs, c.Repeat), nil
		}
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, pipe.Message{Payload: clone(m.Payload), Wire: clone(m.Wire)})
	}
}

func (c *SendCmd) decode(arg string) ([]byte, error) {
	switch {
	case c.Hex:
		return proto.ParseHex(arg)
	case c.Literal:
		return []byte(arg), nil
	}
	return proto.Unescape(arg)
}

// count says "1 reply", "2 replies".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
