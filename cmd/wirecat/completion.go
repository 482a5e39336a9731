package main

import (
	"github.com/alecthomas/kong"
	"github.com/wirecat-dev/wirecat/completion"
	"github.com/wirecat-dev/wirecat/output"
	"github.com/wirecat-dev/wirecat/pipe"
)

// The committed scripts in completions/ are this command's output; a test
// fails when they are stale.
//go:generate sh -c "go run . completion bash > ../../completions/wirecat.bash"
//go:generate sh -c "go run . completion zsh > ../../completions/_wirecat"
//go:generate sh -c "go run . completion fish > ../../completions/wirecat.fish"
//go:generate sh -c "go run . completion powershell > ../../completions/wirecat.ps1"

// CompletionCmd is `wirecat completion`.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish,powershell" placeholder:"SHELL" help:"bash, zsh, fish or powershell."`
}

func (c *CompletionCmd) Help() string {
	return `Prints the completion script for a shell: subcommands, flags, framing specs,
output and input modes, address schemes, *.lua scripts and session files.
Release archives and the deb and rpm packages ship these scripts already.

Examples:

    source <(wirecat completion bash)                 # in ~/.bashrc
    wirecat completion zsh > "${fpath[1]}/_wirecat"   # then restart zsh
    wirecat completion fish > ~/.config/fish/completions/wirecat.fish
    wirecat completion powershell | Out-String | Invoke-Expression`
}

func (c *CompletionCmd) Run(app *App, kctx *kong.Context) error {
	root, err := completion.Build(kctx.Model, completionOptions)
	if err != nil {
		return err // a predictor tag naming nothing: a programming error
	}
	return completion.Write(app.Stdout, c.Shell, root)
}

// completionOptions name what the `predictor` tags on flags and arguments
// complete to.
var completionOptions = completion.Options{Predictors: map[string]completion.Predictor{
	// --frame SPEC: the framing forms (SPEC's Framing specs), and
	// lua:FILE with a Lua script.
	"frame": {
		Words: []string{"raw", "line", "crlf", "delim:", "len:u8", "len:u16be", "len:u16le",
			"len:u32be", "len:u32le", "len:varint", "fixed:", "slip", "cobs", "modbus-tcp", "modbus-rtu", "lua:"},
		Prefixes: []completion.Prefix{{Prefix: "lua:", Files: "*.lua"}},
	},
	// ADDR: the schemes, then socket paths for the Unix ones.
	"addr": {
		Words: []string{"tcp://", "tcp4://", "tcp6://", "udp://", "udp4://", "udp6://",
			"tls://", "unix://", "unixgram://"},
		Prefixes: []completion.Prefix{{Prefix: "unix://", Files: "*"}, {Prefix: "unixgram://", Files: "*"}},
	},
	"output":  {Words: output.Modes},
	"side":    {Words: []string{"client", "server"}},
	"input":   {Words: pipe.InputModes},
	"lua":     {Files: "*.lua"},
	"session": {Files: "*.jsonl"},
	"summary": {Files: "*.json"},
}}

func (*CompletionCmd) wholeModel() {}
