// Command wirecat is a scriptable network swiss-army knife for people who
// build connected devices. This package only parses and prints: the work is
// done by the packages it calls.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/mattn/go-isatty"

	"github.com/wirecat-dev/wirecat/internal/oneproc"
	"github.com/wirecat-dev/wirecat/output"
)

// CLI is the whole command line.
type CLI struct {
	Globals

	Listen     ListenCmd     `cmd:"" help:"Accept a peer and wire it to stdin/stdout (or --exec)."`
	Connect    ConnectCmd    `cmd:"" help:"Connect and wire the connection to stdin/stdout (or --exec)."`
	Send       SendCmd       `cmd:"" help:"Send messages, collect replies, exit with a status scripts can test."`
	Relay      RelayCmd      `cmd:"" help:"Relay each client to its own connection to a target, with inspection, hooks and faults."`
	Simulate   SimulateCmd   `cmd:"" help:"Run a device written in Lua; --count N devices at once."`
	Completion CompletionCmd `cmd:"" help:"Print the completion script for bash, zsh, fish or powershell."`
	Show       ShowCmd       `cmd:"" help:"Print a recorded session; --pcap exports it for Wireshark."`
	Replay     ReplayCmd     `cmd:"" help:"Play one side of a recorded session against a live peer, optionally checking the other."`
	Import     ImportCmd     `cmd:"" help:"Turn a pcap or pcapng capture into a session: TCP reassembled, UDP as messages."`
	Fault      FaultCmd      `cmd:"" help:"Change a running relay's faults, or list its connections (relay --control)."`
	Summary    SummaryCmd    `cmd:"" help:"Merge simulate --summary files, print the figures, check --thresholds."`
	Ports      PortsCmd      `cmd:"" help:"List the serial ports present (path, USB VID:PID, serial number, product)."`
	Version    VersionCmd    `cmd:"" help:"Print version, commit, build date and Go version (also: wirecat --version)."`
	Help       HelpCmd       `cmd:"" help:"Print the usage, or a command's flags and examples: wirecat help listen."`
}

// exitCodes closes `wirecat --help` and the Global flags part of
// docs/cli.md with exitCodesHelp (the root's detail: CLI has a Help field,
// so it cannot provide it as a method).
var exitCodes = kong.PostBuild(func(k *kong.Kong) error {
	k.Model.Detail = exitCodesHelp
	return nil
})

const exitCodesHelp = `Exit codes: 0 success; 1 a runtime failure (refused, reset, TLS failure,
script error); 2 a usage error (bad flag, address, framing spec or script
path); 3 an expectation not met (send --replies/--until not met, replay
--check found a difference); 130 interrupted by SIGINT (Ctrl-C) and 143
terminated by SIGTERM, after flushing stdout and closing any recording, so
that "wirecat listen … && next" stops. A signal ends wirecat within a
second whatever it is doing (a stdout or a --record FIFO nobody reads
included); a second signal ends it at once.`

// Globals are understood by every command.
type Globals struct {
	Verbose bool   `short:"v" help:"Report connection events and timings on stderr."`
	Quiet   bool   `short:"q" help:"Print nothing on stderr but errors."`
	Color   string `enum:"auto,always,never" default:"auto" help:"Colour the text and hex views: auto, always or never (auto honours NO_COLOR and non-terminals)."`
}

// App is the process's state, passed to every command so commands can run
// in tests without the real terminal.
type App struct {
	Ctx    context.Context
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// What stdin, stdout and stderr are.
	StdinNull, StdinTerminal, StdoutTerminal, StderrTerminal bool
	// AtExit runs what must happen even when a signal forces the exit
	// (closing a recording); nil in tests.
	AtExit *ExitHooks
}

// After a signal, the command has flushGrace to write out stdout and end
// by itself; then stdout is abandoned (Drain.Abort), and at hardExit the
// exit hooks run (closing a recording) for at most hookGrace before the
// process exits whatever it is doing, so a signal always ends it within a
// second.
const (
	flushGrace = 300 * time.Millisecond
	hardExit   = 600 * time.Millisecond
	hookGrace  = 150 * time.Millisecond
)

func main() {
	if isVersion(os.Args[1:]) { // before any set-up: nothing to wait for
		printVersion(os.Stdout)
		return
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	// A stdout that can stop draining (a pipe into a paused pager, a
	// terminal) is written from a goroutine of its own: it can then hold
	// up only those who wait for it, and never the exit. A file never
	// stops for good, and is written directly.
	var stdout *output.Drain
	var out io.Writer = os.Stdout
	if !isFile(os.Stdout) {
		stdout = output.NewDrain(os.Stdout, 0)
		out = stdout
	}
	app := &App{
		Ctx: ctx, Stdin: os.Stdin, Stdout: out, Stderr: os.Stderr, Getenv: os.Getenv,
		StdinNull:      isDevNull(os.Stdin) || inBackground(os.Stdin),
		StdinTerminal:  isatty.IsTerminal(os.Stdin.Fd()),
		StdoutTerminal: isatty.IsTerminal(os.Stdout.Fd()),
		StderrTerminal: isatty.IsTerminal(os.Stderr.Fd()),
		AtExit:         &ExitHooks{},
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := (<-sigs).(syscall.Signal)
		cause := interrupted{sig}
		cancel(cause)
		if stdout != nil {
			time.AfterFunc(flushGrace, stdout.Abort)
		}
		force := time.NewTimer(hardExit)
		select {
		case <-force.C:
			// A hook can block (a recording written to a FIFO nobody
			// reads), and the main goroutine may be running them already:
			// wait for them only so long.
			app.AtExit.Run(hookGrace, sigs)
		case <-sigs: // a second signal: no more waiting, not even for the hooks
		}
		os.Exit(cause.code())
	}()
	code := run(app, os.Args[1:])
	if stdout != nil {
		stdout.Close() // what the command printed goes out, unless a signal gives up on it
	}
	app.AtExit.Run(0, nil) // a signal still ends a wait here
	os.Exit(code)
}

// interrupted is why App.Ctx ends when a signal arrives.
type interrupted struct{ sig syscall.Signal }

func (i interrupted) Error() string { return i.how() }

// name is the signal's name: SIGINT or SIGTERM.
func (i interrupted) name() string {
	if i.sig == syscall.SIGINT {
		return "SIGINT"
	}
	return "SIGTERM"
}

// how says it in a sentence: "interrupted by SIGINT".
func (i interrupted) how() string {
	if i.sig == syscall.SIGINT {
		return "interrupted by SIGINT"
	}
	return "terminated by SIGTERM"
}

// code is the shell's convention for a process ended by a signal: 128 + its
// number (130 for SIGINT, 143 for SIGTERM).
func (i interrupted) code() int { return 128 + int(i.sig) }

// signalled returns the signal that ended ctx, if one did.
func signalled(ctx context.Context) (interrupted, bool) {
	var i interrupted
	if ctx == nil {
		return i, false
	}
	ok := errors.As(context.Cause(ctx), &i)
	return i, ok
}

// ExitHooks are run once, at the exit, however it comes.
type ExitHooks struct {
	mu    sync.Mutex
	hooks []func()
	done  chan struct{} // closed once the hooks have run; nil until they start
}

// Add registers f; on a nil ExitHooks it does nothing.
func (h *ExitHooks) Add(f func()) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hooks = append(h.hooks, f)
}

// Run runs every hook once, the latest first, and waits until they are
// done, at most wait (0: no limit) and until stop receives (nil: never).
// It reports whether the hooks are done. The hooks run in a goroutine of
// their own, started by the first Run: a later Run waits for the same
// hooks, and no lock is held while they run, so a hook that blocks holds
// up only the callers that choose to wait for it, as long as they choose.
func (h *ExitHooks) Run(wait time.Duration, stop <-chan os.Signal) bool {
	if h == nil {
		return true
	}
	h.mu.Lock()
	if h.done == nil {
		h.done = make(chan struct{})
		go func(hooks []func(), done chan struct{}) {
			defer close(done)
			for i := len(hooks) - 1; i >= 0; i-- {
				hooks[i]()
			}
		}(h.hooks, h.done)
	}
	done := h.done
	h.mu.Unlock()
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-done:
		return true
	case <-timeout:
	case <-stop:
	}
	return false
}

// run parses args, runs the command and turns its error into an exit code.
func run(app *App, args []string) int {
	switch {
	case len(args) == 0:
		// Bare wirecat: the usage, on stderr as for any usage error, so
		// `wirecat $EMPTY` in a script fails rather than passing silently.
		toStderr := *app
		toStderr.Stdout = app.Stderr
		run(&toStderr, []string{"--help"})
		return exitUsage
	case isVersion(args):
		printVersion(app.Stdout)
		return exitOK
	}
	cli, globals := cliFor(args)
	exit := -1
	parser, err := newParser(cli, exitCodes,
		kong.Name("wirecat"),
		kong.Description("A scriptable network swiss-army knife for people who build connected devices:\nTCP, UDP, TLS and Unix sockets, framings, Lua devices, relays and recorded sessions.\n\n"+
			"    wirecat listen 5000                  # like nc -l 5000\n"+
			"    wirecat connect 127.0.0.1 5000       # like nc 127.0.0.1 5000\n"+
			"    wirecat connect -z 127.0.0.1 1-1024  # which ports accept, like nc -z\n\n"+
			"'wirecat help COMMAND' shows a command's flags and examples; 'wirecat --version' the version."),
		kong.Writers(app.Stdout, app.Stderr),
		kong.Exit(func(code int) { exit = code }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, WrapUpperBound: 80}),
		kong.Bind(app),
	)
	if err != nil {
		panic(err) // the CLI model itself is wrong: a programming error
	}
	kctx, err := parser.Parse(args)
	if exit >= 0 { // --help, or kong gave up on its own
		return exit
	}
	if err != nil {
		fmt.Fprintf(app.Stderr, "wirecat: %v\n", err)
		if kctx != nil && len(args) > 0 {
			fmt.Fprintf(app.Stderr, "wirecat: hint: see 'wirecat %s --help'\n", kctx.Command())
		}
		return exitUsage
	}
	kctx.Bind(globals)
	// The start-up ran on one P (internal/oneproc); the command gets them all.
	oneproc.Done()
	err = kctx.Run()
	if sig, ok := signalled(app.Ctx); ok {
		// A signal decides the exit code, so `wirecat listen … && next`
		// stops. What failed because of it (a dial cancelled, a closed
		// connection) is no news; anything else is still said.
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, sig) {
			var s silent
			var i interruptedError
			if !errors.As(err, &s) && (errors.As(err, &i) || !isClosed(err)) {
				report(app.Stderr, err)
			}
		}
		return sig.code()
	}
	if err == nil {
		return exitOK
	}
	return report(app.Stderr, err)
}

// newParser is kong.New with the help texts' ${vars} (helpVars) filled in
// here, once, and kong's own interpolation kept off every string that has
// nothing to interpolate. Kong runs a regexp over every help text,
// placeholder, default and enum of the model, and over every variable once
// per flag: for send's ~40 flags that was a third of the start-up. A string
// without a '$' comes out of kong's interpolation unchanged, so it is set
// aside before it and put back after: the model is the same as with
// kong.Vars(helpVars).
func newParser(cli any, options ...kong.Option) (*kong.Kong, error) {
	type aside struct {
		at   *string
		text string
	}
	var saved []aside
	keep := func(s *string) {
		if *s != "" && !strings.Contains(*s, "$") {
			saved = append(saved, aside{s, *s})
			*s = ""
		}
	}
	fill := strings.NewReplacer(helpVarPairs()...)
	prepare := kong.PostBuild(func(k *kong.Kong) error {
		return kong.Visit(k.Model, func(v kong.Visitable, next kong.Next) error {
			switch v := v.(type) {
			case *kong.Node:
				keep(&v.Help)
			case *kong.Flag:
				keep(&v.PlaceHolder)
			case *kong.Value:
				if strings.Contains(v.Help, "${") {
					v.Help = fill.Replace(v.Help)
				}
				keep(&v.Help)
				keep(&v.Default)
				keep(&v.Enum)
			}
			return next(nil)
		})
	})
	k, err := kong.New(cli, append(options, prepare)...)
	for _, a := range saved {
		*a.at = a.text
	}
	return k, err
}

// helpVarPairs lists helpVars as strings.NewReplacer wants them.
func helpVarPairs() []string {
	var pairs []string
	for name, value := range helpVars {
		pairs = append(pairs, "${"+name+"}", value)
	}
	return pairs
}

// interruptedError is a command's own account of what a signal cut short
// ("interrupted after 1 of 5 replies"): always printed.
type interruptedError struct{ error }

func (e interruptedError) Unwrap() error { return e.error }

// isClosed reports an error that only says a connection was closed under
// a reader: what a signal does to every connection.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) || errors.Is(err, output.ErrAborted)
}

// cliFor returns the command line to parse args with. Building kong's model
// costs about 0.1 ms a flag, so when args name a command the model holds
// only that command: start-up then pays for one command's flags, not all.
func cliFor(args []string) (cli any, globals *Globals) {
	full := &CLI{}
	name := ""
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			name = a
			break
		}
	}
	t := reflect.TypeOf(*full)
	for i := range t.NumField() {
		f := t.Field(i)
		if _, isCmd := f.Tag.Lookup("cmd"); !isCmd || strings.ToLower(f.Name) != name {
			continue
		}
		if reflect.PointerTo(f.Type).Implements(reflect.TypeFor[wholeModel]()) {
			break
		}
		one := reflect.New(reflect.StructOf([]reflect.StructField{t.Field(0), f}))
		return one.Interface(), one.Elem().Field(0).Addr().Interface().(*Globals)
	}
	return full, &full.Globals
}

// wholeModel marks a command that reads the whole command line model
// (completion scripts are generated from it).
type wholeModel interface{ wholeModel() }

// Exit codes, as SPEC names them.
const (
	exitOK      = 0
	exitFailure = 1 // refused, reset, TLS failure, script error
	exitUsage   = 2 // bad flag, address, framing spec or script path
	exitUnmet   = 3 // an expectation not met
)

// usageError marks an error as the user's command line being wrong.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// unmetError is an expectation that was not met (exit 3).
type unmetError struct{ error }

func (e unmetError) Unwrap() error { return e.error }

// hinted carries advice for what to do next.
type hinted struct {
	error
	hint string
}

func (e hinted) Unwrap() error { return e.error }

// silent is an error already reported in full (a summary, a diff): only
// its exit code is left to give.
type silent struct{ code int }

func (silent) Error() string { return "already reported" }

// report prints err once and returns its exit code.
func report(w io.Writer, err error) int {
	var s silent
	if errors.As(err, &s) {
		return s.code
	}
	fmt.Fprintf(w, "wirecat: %v\n", err)
	var h hinted
	if errors.As(err, &h) && h.hint != "" {
		fmt.Fprintf(w, "wirecat: hint: %s\n", h.hint)
	}
	var u usageError
	var m unmetError
	switch {
	case errors.As(err, &u):
		return exitUsage
	case errors.As(err, &m):
		return exitUnmet
	}
	return exitFailure
}

// isVersion reports `wirecat version` and `wirecat --version` (the habit
// of most tools; socat -V): printing the version needs no command-line
// model, and building kong's would be most of the start-up time.
func isVersion(args []string) bool {
	return len(args) == 1 && (args[0] == "version" || args[0] == "--version" || args[0] == "-V")
}

// HelpCmd is `wirecat help [COMMAND]`: the same text as --help.
type HelpCmd struct {
	Command []string `arg:"" optional:"" placeholder:"COMMAND" help:"The command to explain; none: the usage."`
}

func (h *HelpCmd) Help() string {
	return `Prints the same text as --help: bare, the list of commands; with a
command, its flags and examples.

Examples:

    wirecat help
    wirecat help listen`
}

func (h *HelpCmd) Run(app *App) error {
	if len(h.Command) > 0 {
		var names []string
		t := reflect.TypeFor[CLI]()
		for i := range t.NumField() {
			if _, isCmd := t.Field(i).Tag.Lookup("cmd"); isCmd {
				names = append(names, strings.ToLower(t.Field(i).Name))
			}
		}
		if !slices.Contains(names, h.Command[0]) {
			return usage(fmt.Errorf("unknown command %q (want %s)", h.Command[0], strings.Join(names, ", ")))
		}
	}
	if code := run(app, append(h.Command, "--help")); code != exitOK {
		return silent{code}
	}
	return nil
}

// isFile reports whether f is a regular file or /dev/null: writes to it
// never wait on a reader.
func isFile(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	if fi.Mode().IsRegular() {
		return true
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(fi, null)
}

// isDevNull reports whether f is /dev/null: a background job's stdin,
// which means receive only.
func isDevNull(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return true // no stdin at all
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(fi, null)
}
