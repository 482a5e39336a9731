package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wirecat-dev/wirecat/diag"
	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/output"
	"github.com/wirecat-dev/wirecat/pipe"
	"github.com/wirecat-dev/wirecat/progress"
	"github.com/wirecat-dev/wirecat/proto"
	"github.com/wirecat-dev/wirecat/script/guard"
	"github.com/wirecat-dev/wirecat/session"
	"github.com/wirecat-dev/wirecat/units"
)

var helpVars = map[string]string{
	"frames":  "raw, line, crlf, delim:SEP, len:u8|u16be|u16le|u32be|u32le|varint, fixed:N, slip, cobs, modbus-tcp, modbus-rtu, lua:FILE",
	"outputs": "raw, lines, text, hex, json",
	"inputs":  "raw, lines, hex",
}

// DataFlags are shared by the commands that move data.
type DataFlags struct {
	Frame    string     `placeholder:"SPEC" predictor:"frame" help:"How a byte stream is cut into messages: ${frames}. Default raw."`
	Output   string     `short:"o" placeholder:"MODE" predictor:"output" help:"How received messages are written to stdout: ${outputs}. Default raw, or lines with --frame."`
	Record   string     `placeholder:"FILE" type:"path" predictor:"session" help:"Record every event to FILE (JSON Lines session)."`
	MaxFrame units.Size `default:"1MiB" placeholder:"SIZE" help:"Largest message accepted (default 1MiB); a larger one is an error for its connection."`
	LuaFlags
}

// LuaFlags bound the Lua scripts a command runs: lua: framers, relay hooks,
// devices (docs/lua.md, "Limits").
type LuaFlags struct {
	LuaTimeout string     `group:"Lua" placeholder:"DUR" help:"Longest one Lua call may run before it is stopped, and only what it served with it: a lua: framer call (default 100ms), a relay hook call (default 20ms: the hooks of every connection share one state), and given to simulate a device's run between two waits (default none). 0 for none. E.g. --lua-timeout 1s."`
	LuaMemory  units.Size `group:"Lua" placeholder:"SIZE" default:"1GiB" help:"Memory cap: over it, the script that is filling the heap is stopped, the process goes on (default 1GiB; 0 for none). E.g. --lua-memory 256MiB."`
	LuaUnsafe  bool       `group:"Lua" help:"Give hooks, framers and devices the whole os and io libraries, dofile, loadfile and require; os.exit stays closed (default: os clock functions only). E.g. relay ... --script audit.lua --lua-unsafe."`
}

// apply sets the process's Lua limits; ctx ends every Lua call when done.
func (l *LuaFlags) apply(ctx context.Context) error {
	lim := guard.Limits{Timeout: guard.DefaultTimeout, HookTimeout: guard.DefaultHookTimeout, Memory: int64(l.LuaMemory), Unsafe: l.LuaUnsafe, Context: ctx}
	if l.LuaTimeout != "" {
		d, err := units.ParseDuration(l.LuaTimeout)
		if err != nil || d < 0 {
			return usage(fmt.Errorf("--lua-timeout %q: want a duration such as 100ms or 2s, or 0 for none", l.LuaTimeout))
		}
		lim.Timeout, lim.HookTimeout, lim.DeviceTimeout = d, d, d
	}
	if l.LuaMemory < 0 {
		return usage(fmt.Errorf("--lua-memory must not be negative"))
	}
	guard.Set(lim)
	return nil
}

// InputFlags say how stdin becomes messages, for the commands that read it.
type InputFlags struct {
	Input string `short:"i" placeholder:"MODE" predictor:"input" help:"How stdin becomes messages: ${inputs}. Default raw, or lines with --frame."`
}

// TLSFlags configure TLS on either side.
type TLSFlags struct {
	Insecure    bool     `group:"TLS" help:"TLS client: accept any server certificate."`
	CA          string   `group:"TLS" placeholder:"FILE" type:"existingfile" help:"TLS client: trust the CAs in FILE (PEM)."`
	Cert        string   `group:"TLS" placeholder:"FILE" type:"existingfile" help:"TLS certificate (PEM): the server's, or the client's for mTLS."`
	Key         string   `group:"TLS" placeholder:"FILE" type:"existingfile" help:"Private key (PEM) for --cert."`
	SNI         string   `group:"TLS" placeholder:"NAME" help:"TLS client: server name to send and verify."`
	ALPN        []string `group:"TLS" placeholder:"P1,P2" help:"ALPN protocols to offer."`
	Pin         string   `group:"TLS" placeholder:"sha256:HEX" help:"TLS client: accept exactly the certificate with this SHA-256 fingerprint."`
	ClientCA    string   `group:"TLS" placeholder:"FILE" type:"existingfile" help:"TLS server: require client certificates signed by the CAs in FILE."`
	PSK         string   `name:"psk" group:"TLS" placeholder:"HEX" help:"DTLS: pre-shared key in hex, instead of certificates (CoAP devices)."`
	PSKFile     string   `name:"psk-file" group:"TLS" placeholder:"FILE" type:"existingfile" help:"DTLS: read the pre-shared key (hex) from FILE, out of ps and shell history."`
	PSKIdentity string   `name:"psk-identity" group:"TLS" placeholder:"ID" help:"DTLS: the identity the key goes by (client: sent; server: the only one accepted)."`
	WSFlags
}

// WSFlags shape ws:// and wss:// connections (the TLS flags apply to wss).
type WSFlags struct {
	WSText      bool           `name:"ws-text" group:"WebSocket" help:"WebSocket: send text messages (default binary; both are read)."`
	Header      []string       `group:"WebSocket" placeholder:"'K: V'" help:"WebSocket client: add this header to the upgrade request (repeatable; 'Host: NAME' replaces the Host)."`
	Subprotocol string         `group:"WebSocket" placeholder:"NAME" help:"WebSocket: offer this subprotocol (client) or require it (listener), e.g. mqtt."`
	Origin      string         `group:"WebSocket" placeholder:"URL" help:"WebSocket client: the Origin header to send; listener: the only origin host accepted (default any)."`
	WSPing      units.Duration `name:"ws-ping" group:"WebSocket" placeholder:"DUR" help:"WebSocket: ping every DUR and drop a peer whose pong does not come within DUR."`
}

func (w *WSFlags) options() link.WSOptions {
	return link.WSOptions{Text: w.WSText, Header: w.Header, Subprotocol: w.Subprotocol, Origin: w.Origin, Ping: w.WSPing.D()}
}

func (t *TLSFlags) options() link.TLSOptions {
	return link.TLSOptions{
		Insecure: t.Insecure, CA: t.CA, Cert: t.Cert, Key: t.Key, SNI: t.SNI,
		Pin: t.Pin, ClientCA: t.ClientCA, ALPN: t.ALPN,
		PSK: t.PSK, PSKFile: t.PSKFile, PSKIdentity: t.PSKIdentity,
	}
}

// framing parses --frame; a bad spec is a usage error.
func (d *DataFlags) framing() (proto.Framer, error) {
	spec := d.Frame
	if spec == "" {
		spec = "raw"
	}
	f, err := proto.Parse(spec, loadFramer)
	if err != nil {
		return nil, usage(err)
	}
	return f, nil
}

// loadFramer builds framers that live outside proto (lua:FILE); nil until
// the Lua runtime is linked in.
var loadFramer proto.LoadFunc

// The -o and -i values are checked here rather than by a kong enum, whose
// error would list "" (not given) among the valid values.
func (d *DataFlags) checkOutput() error {
	if d.Output != "" && !slices.Contains(output.Modes, d.Output) {
		return usage(fmt.Errorf("--output %q: unknown mode (want %s)", d.Output, strings.Join(output.Modes, ", ")))
	}
	return nil
}

func (in *InputFlags) check() error {
	if in.Input != "" && !slices.Contains(pipe.InputModes, in.Input) {
		return usage(fmt.Errorf("--input %q: unknown mode (want %s)", in.Input, strings.Join(pipe.InputModes, ", ")))
	}
	return nil
}

func (d *DataFlags) outputMode() string {
	if d.Output != "" {
		return d.Output
	}
	if d.Frame != "" && d.Frame != "raw" {
		return "lines"
	}
	return "raw"
}

func (in *InputFlags) mode(d *DataFlags) string {
	if in.Input != "" {
		return in.Input
	}
	if d.Frame != "" && d.Frame != "raw" {
		return "lines"
	}
	return "raw"
}

// logger builds the stderr voice from the global flags.
func (g *Globals) logger(app *App) *diag.Log {
	return &diag.Log{W: app.Stderr, Verbose: g.Verbose, Quiet: g.Quiet}
}

// colour decides whether the human views are coloured: never into a pipe
// unless asked, never when NO_COLOR is set.
func (g *Globals) colour(app *App) bool {
	switch g.Color {
	case "always":
		return true
	case "never":
		return false
	}
	return app.StdoutTerminal && app.Getenv("NO_COLOR") == "" && app.Getenv("TERM") != "dumb"
}

// plumbing is what a data command needs to move and show messages.
type plumbing struct {
	cfg     *pipe.Config
	out     *output.Writer
	meter   *progress.Meter // bytes each way: a live line on a terminal, totals with -v
	rec     *session.Writer // nil without --record
	log     *diag.Log
	closer  []io.Closer
	closed  bool   // replay closes early, before its diff, and again on return
	stopRec func() // stops the recording's periodic flush
}

// flush writes out what the recording and the output hold, the recording
// first: it never waits behind a stdout that does not drain.
func (p *plumbing) flush() error {
	var err error
	if p.rec != nil {
		err = p.rec.Flush()
	}
	if oerr := p.out.Flush(); err == nil {
		err = oerr
	}
	return err
}

func (p *plumbing) Close() {
	if p.closed {
		return
	}
	p.closed = true
	if p.stopRec != nil {
		p.stopRec()
	}
	p.meter.Done()
	if sent, recv := p.meter.Bytes(); sent+recv > 0 {
		p.log.Debugf("%s", p.meter.Totals())
	}
	p.out.Close()
	for _, c := range p.closer {
		if err := c.Close(); err != nil {
			p.log.Errorf("%v", err)
		}
	}
}

// plumb builds the framing, the output and the recorder for a data command.
func plumb(app *App, g *Globals, d *DataFlags, showSent bool) (*plumbing, error) {
	return plumbWith(app, g, d, output.Options{ShowSent: showSent})
}

// plumbView is plumb for a relay, whose output is only a view of traffic
// that goes elsewhere: it never holds the traffic up (output.Options.View).
func plumbView(app *App, g *Globals, d *DataFlags) (*plumbing, error) {
	return plumbWith(app, g, d, output.Options{ShowSent: true, View: true})
}

// recFlushEvery bounds how long recorded events wait in memory while the
// command is busy elsewhere (blocked on a stdout that does not drain).
const recFlushEvery = 200 * time.Millisecond

func plumbWith(app *App, g *Globals, d *DataFlags, opt output.Options) (*plumbing, error) {
	if err := d.LuaFlags.apply(app.Ctx); err != nil {
		return nil, err
	}
	if err := d.checkOutput(); err != nil {
		return nil, err
	}
	f, err := d.framing()
	if err != nil {
		return nil, err
	}
	opt.Mode, opt.Color = d.outputMode(), g.colour(app)
	out, err := output.New(app.Stdout, opt)
	if err != nil {
		return nil, usage(err)
	}
	if d.MaxFrame <= 0 {
		return nil, usage(fmt.Errorf("--max-frame must be positive"))
	}
	p := &plumbing{out: out, log: g.logger(app), meter: progress.New(app.Stderr, app.StderrTerminal && !g.Quiet)}
	p.log.W = p.meter.Above(app.Stderr) // a log line never lands after the live progress line
	var sinks []event.Sink
	if d.Record != "" {
		rec, err := openRecording(d, app)
		if err != nil {
			return nil, err
		}
		rec.Batch() // written whenever the output is flushed: before every wait on the network
		// The recording comes first: an event is recorded before stdout
		// can hold it up, and written out within recFlushEvery even while
		// stdout blocks; a signal's forced exit still closes it.
		sinks = append(sinks, rec)
		p.closer = append(p.closer, rec)
		p.rec = rec
		p.stopRec = every(recFlushEvery, func() { rec.Flush() })
		app.AtExit.Add(func() { rec.Close() })
	}
	sinks = append(sinks, out, meterSink{p.meter})
	p.cfg = &pipe.Config{
		Framer:   f,
		MaxFrame: int(d.MaxFrame),
		Sink:     event.Tee(sinks...),
		Flush:    p.flush,
		Log:      p.log,
	}
	return p, nil
}

// separateDatagrams makes each received datagram visibly one message on
// stdout when the output is raw by default (no -o given): a datagram that
// does not end with a newline gets one, so "ok temp 1" and "ok temp 2" do
// not print as "ok temp 1ok temp 2". The recording keeps the exact bytes;
// -o raw asks for them on stdout too. A stream's reads are not messages:
// it is left alone.
func (p *plumbing) separateDatagrams(d *DataFlags, addr link.Addr) {
	if !addr.Datagram() && !addr.IsWebSocket() || d.Output != "" || d.outputMode() != "raw" {
		return
	}
	var sinks []event.Sink
	if p.rec != nil {
		sinks = append(sinks, p.rec) // first: never behind stdout (see plumbWith)
	}
	sinks = append(sinks, &newlineEach{s: p.out}, meterSink{p.meter})
	p.cfg.Sink = event.Tee(sinks...)
}

// newlineEach ends each received message with a newline if it has none.
// The output copies what it is given, so one buffer serves every datagram
// (a receive at full rate allocates nothing more).
type newlineEach struct {
	s   event.Sink
	mu  sync.Mutex
	buf []byte
	ev  event.Event
}

func (n *newlineEach) Emit(e *event.Event) error {
	if e.Kind != event.Data || !e.Received() || bytes.HasSuffix(e.Data, []byte("\n")) {
		return n.s.Emit(e)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.buf = append(append(n.buf[:0], e.Data...), '\n')
	n.ev = *e
	n.ev.Data = n.buf
	return n.s.Emit(&n.ev)
}

// every runs f every d until the returned stop is called.
func every(d time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// meterSink counts every message's bytes on the progress meter.
type meterSink struct{ m *progress.Meter }

func (s meterSink) Emit(e *event.Event) error {
	if e.Kind == event.Data {
		if e.Received() {
			s.m.Received().Add(len(e.Data))
		} else {
			s.m.Sent().Add(len(e.Data))
		}
	}
	return nil
}

// linkOptions builds the transport options, with TLS notices on stderr;
// a WebSocket message is bounded by --max-frame, as any message is.
func (p *plumbing) linkOptions(t *TLSFlags, broadcast bool) *link.Options {
	o := &link.Options{TLS: t.options(), WS: t.WSFlags.options(), Broadcast: broadcast, Log: p.log.Notef, Debug: p.log.Debugf}
	o.WS.MaxMessage = p.cfg.MaxFrame
	return o
}

// parseAddr reads an address; a bad one is a usage error.
func parseAddr(s string, udp bool) (link.Addr, error) {
	a, err := link.Parse(s, udp)
	if err != nil {
		return a, usage(err)
	}
	return a, nil
}

// stdinSource is what stdin contributes: nil when it must not be read.
func stdinSource(app *App, d *DataFlags, in *InputFlags, f proto.Framer, recvOnly bool) (pipe.Source, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	if recvOnly || app.StdinNull {
		return nil, nil
	}
	src, err := pipe.NewInput(app.Stdin, in.mode(d), f)
	if err != nil {
		return nil, usage(err)
	}
	return src, nil
}

// netError classifies a transport error: a bad TLS option is the user's
// command line, anything else a runtime failure.
func netError(err error) error {
	if errors.Is(err, link.ErrBadOption) {
		return usage(err)
	}
	return err
}
