package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/wirecat-dev/wirecat/capture"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/proto"
	"github.com/wirecat-dev/wirecat/session"
)

// ImportCmd is `wirecat import`.
type ImportCmd struct {
	Capture string   `arg:"" placeholder:"CAPTURE" type:"path" help:"The capture to read: pcap or pcapng (tcpdump -w, tshark -w, dumpcap, Wireshark); - reads stdin."`
	Session string   `arg:"" optional:"" default:"-" placeholder:"SESSION" type:"path" help:"The session file to write; - or none writes it to stdout."`
	Host    []string `placeholder:"IP[/BITS]" help:"Keep only conversations with an end at this address or in this network (repeatable)."`
	Port    []uint16 `placeholder:"PORT" help:"Keep only conversations with an end on this port (repeatable)."`
	Frame   string   `placeholder:"SPEC" predictor:"frame" help:"Cut each TCP stream into messages with this framing (line, crlf, len:u16be...), recorded as the session's; default: a message ends at each PSH or turn."`
}

func (c *ImportCmd) Help() string {
	return `Turns a packet capture into a session: each TCP or UDP conversation
becomes a connection with its real addresses, timing and sides. TCP streams
are reassembled (retransmissions and overlaps dropped, out-of-order segments
put back in order, bytes the capture missed flagged as errors in the
session); each UDP datagram is a message. With --frame, TCP streams are cut
into that framing's messages, and the session replays with it. The side
that sent the SYN is the
client (without a handshake: the one on the higher port; for UDP the first
sender). The session then replays against a live server with
replay --as client --check, or serves as a mock with replay --as server.
show --pcap and import round-trip. Without SESSION (or with -) the session
goes to stdout.

Examples:

    tshark -i lo -f 'tcp port 1883' -w board.pcapng      # Ctrl-C when done
    wirecat import board.pcapng board.jsonl --port 1883
    wirecat replay board.jsonl --as client --check
    wirecat import lab.pcap dev.jsonl --host 10.0.0.7 --port 5000
    wirecat replay dev.jsonl --as server --listen 127.0.0.1:5000   # a mock`
}

func (c *ImportCmd) Run(app *App, g *Globals) error {
	log := g.logger(app)
	opts := capture.Options{Ports: c.Port, Note: func(f string, a ...any) { log.Notef("import: "+f, a...) }}
	frame := "raw"
	if c.Frame != "" && c.Frame != "raw" {
		if strings.HasPrefix(strings.ToLower(c.Frame), "lua:") {
			return usage(fmt.Errorf("--frame %s: import cuts with the built-in framings (line, crlf, delim:, len:, fixed:, slip, cobs)", c.Frame))
		}
		f, err := proto.Parse(c.Frame, nil)
		if err != nil {
			return usage(err)
		}
		opts.Framer, frame = f, c.Frame
	}
	for _, h := range c.Host {
		p, err := parseHostFilter(h)
		if err != nil {
			return usage(err)
		}
		opts.Hosts = append(opts.Hosts, p)
	}
	var in io.Reader = app.Stdin
	name := "stdin"
	if c.Capture != "-" {
		f, err := os.Open(c.Capture)
		if err != nil {
			return inputFileError(err)
		}
		defer f.Close()
		in, name = f, c.Capture
	}
	r, err := capture.NewReader(in)
	if err != nil {
		if errors.Is(err, capture.ErrNotCapture) {
			return hinted{fmt.Errorf("import %s: %w", name, err), "import reads what tcpdump -w, tshark -w and dumpcap write; a session file is shown with wirecat show"}
		}
		return fmt.Errorf("import %s: %w", name, err)
	}
	var w *session.Writer
	newSink := func(start time.Time) (event.Sink, error) {
		host, _ := os.Hostname()
		v, _, _ := buildInfo()
		h := session.Header{Command: "import " + name, Frame: frame, Start: start, Host: host, Writer: "wirecat " + v}
		var err error
		if c.Session == "-" {
			w, err = session.NewWriter(app.Stdout, h)
		} else {
			w, err = session.Create(c.Session, h)
		}
		if err == nil {
			w.Batch() // a file to a file: nothing waits on the network
		}
		return w, err
	}
	t0 := time.Now()
	st, err := capture.Import(r, newSink, opts)
	if w != nil {
		if cerr := w.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}
	var fe *capture.FormatError
	switch {
	case errors.As(err, &fe):
		return fmt.Errorf("import %s: %w; the session holds what came before", name, err)
	case errors.Is(err, capture.ErrNoConversation):
		if w != nil && c.Session != "-" {
			os.Remove(c.Session) // an empty session helps nobody
		}
		return fmt.Errorf("import %s: %w", name, err)
	case err != nil:
		return err
	}
	if st.Missing > 0 {
		out := c.Session
		if out == "-" {
			out = "the session"
		}
		log.Notef("import: %d bytes the capture missed are flagged as errors in %s", st.Missing, out)
	}
	el := time.Since(t0)
	log.Debugf("import: %d packets, %d connections, %d messages, %d bytes, %d retransmitted segments, %d packets left out, in %v",
		st.Packets, st.Conns, st.Messages, st.Bytes, st.Retransmits, st.Filtered+st.Other+st.Fragments+st.Short, el.Round(time.Millisecond))
	return nil
}

// parseHostFilter reads --host: an IP address or a network in CIDR form.
func parseHostFilter(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("--host %q: want an IP address or a network like 10.0.0.0/24", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("--host %q: want an IP address or a network like 10.0.0.0/24", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
