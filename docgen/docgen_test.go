package docgen_test

import (
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/wirecat-dev/wirecat/docgen"
)

type cli struct {
	Verbose bool `short:"v" help:"Say more."`
	Send    send `cmd:"" help:"Send things."`
	Hidden  send `cmd:"" hidden:""`
}

type send struct {
	Addr   string   `arg:"" placeholder:"ADDR" help:"Where."`
	Msgs   []string `arg:"" optional:"" help:"Messages."`
	Output string   `short:"o" enum:"raw,json" default:"raw" help:"Output mode."`
	Frame  string   `placeholder:"SPEC" help:"Framing: len:u8|u16be."`
	Delay  bool     `negatable:"" help:"Wait."`
	Secret string   `hidden:""`
}

func (send) Help() string {
	return `Sends messages.

Examples:

    tcli send 127.0.0.1:5000 hello

    tcli send -o json 127.0.0.1:5000 hi
More text.`
}

func TestMarkdown(t *testing.T) {
	k, err := kong.New(&cli{}, kong.Name("tcli"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := docgen.Markdown(&b, k.Model, "make docs"); err != nil {
		t.Fatal(err)
	}
	doc := b.String()
	for _, want := range []string{
		"# tcli command line",
		"`make docs`; do not edit",
		"| [`tcli send`](#tcli-send) | Send things. |",
		"| `-v, --verbose` |  | Say more. |",
		"\n## tcli send\n\n```\ntcli send <addr> [<msgs> ...] [flags]\n```\n",
		"```sh\ntcli send 127.0.0.1:5000 hello\n\ntcli send -o json 127.0.0.1:5000 hi\n```\nMore text.",
		"| `<addr>` | Where. |",
		"| `-o, --output OUTPUT` | `raw` | Output mode. One of: raw, json. |",
		"| `--frame SPEC` |  | Framing: len:u8\\|u16be. |",
		"| `--delay, --no-delay` |  | Wait. |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("doc lacks %q", want)
		}
	}
	for _, hidden := range []string{"hidden", "secret"} {
		if strings.Contains(strings.ToLower(doc), hidden) {
			t.Errorf("doc shows the hidden %s", hidden)
		}
	}
	if t.Failed() {
		t.Log(doc)
	}
}
