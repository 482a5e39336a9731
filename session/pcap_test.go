package session

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/internal/e2e"
)

func needTool(t *testing.T, name string) string { t.Helper(); return e2e.NeedPath(t, name) }

func tshark(t *testing.T, file string, args ...string) string {
	t.Helper()
	cmd := exec.Command("tshark", append([]string{"-n", "-r", file}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

func exportFile(t *testing.T, evs []*event.Event) string {
	t.Helper()
	r, err := NewReader(bytes.NewReader(record(t, evs)), "s.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ExportPcap(r, f); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExportPcap(t *testing.T) {
	needTool(t, "tshark")
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	big := strings.Repeat("0123456789", 15000) // 150,000 bytes: three segments
	evs := []*event.Event{
		{Kind: event.Open, Time: ms(1), Conn: 1, Transport: "tcp", Role: event.Client, Local: "127.0.0.1:40000", Remote: "127.0.0.1:40123"},
		{Kind: event.Data, Time: ms(2), Conn: 1, From: event.Client, Data: []byte("HELLO-ONE\n")},
		{Kind: event.Data, Time: ms(3), Conn: 1, From: event.Client, Data: []byte("HELLO-TWO\n")},
		{Kind: event.Data, Time: ms(4), Conn: 1, From: event.Server, Data: []byte("REPLY-ONE\n")},
		{Kind: event.Data, Time: ms(5), Conn: 1, From: event.Client, Data: []byte("BIG:" + big + "\n")},
		{Kind: event.Data, Time: ms(6), Conn: 1, From: event.Server, Data: []byte{0, 1, 2, 0xff}},
		{Kind: event.Data, Time: ms(7), Conn: 1, From: event.Server, Data: []byte("REPLY-LAST\n")},
		{Kind: event.Open, Time: ms(8), Conn: 2, Transport: "udp", Role: event.Server, Local: "127.0.0.1:40124", Remote: "127.0.0.1:41000"},
		{Kind: event.Data, Time: ms(9), Conn: 2, From: event.Client, Data: []byte("udp-ping")},
		{Kind: event.Data, Time: ms(10), Conn: 2, From: event.Server, Data: []byte("udp-pong")},
		{Kind: event.Close, Time: ms(11), Conn: 1, From: event.Server, Err: errors.New("peer went away")},
		{Kind: event.Open, Time: ms(12), Conn: 3, Transport: "tcp", Role: event.Server, Local: "[::1]:40125", Remote: "[::1]:51000"},
		{Kind: event.Data, Time: ms(13), Conn: 3, From: event.Client, Data: []byte("SIX-HELLO")},
		{Kind: event.Close, Time: ms(14), Conn: 3, From: event.Client},
		{Kind: event.Open, Time: ms(15), Conn: 4, Transport: "unix", Role: event.Client, Local: "@", Remote: "/tmp/dev.sock"},
		{Kind: event.Data, Time: ms(16), Conn: 4, From: event.Client, Data: []byte("UNIX-HELLO")},
		{Kind: event.Close, Time: ms(17), Conn: 4},
		{Kind: event.Open, Time: ms(18), Conn: 5, Transport: "tcp", Role: event.Relay, Local: "[::1]:40126", Remote: "127.0.0.1:52000"},
		{Kind: event.Data, Time: ms(19), Conn: 5, From: event.Server, Data: []byte("MIXED")},
		{Kind: event.Data, Time: ms(20), Conn: 6, From: event.Client, Data: []byte("NO-OPEN")}, // open lost
		{Kind: event.Close, Time: ms(21), Conn: 2},
	}
	path := exportFile(t, evs)

	// The first conversation follows in order, with its real addresses.
	out := tshark(t, path, "-q", "-z", "follow,tcp,ascii,0")
	if !strings.Contains(out, "Node 0: 127.0.0.1:40000") || !strings.Contains(out, "Node 1: 127.0.0.1:40123") {
		t.Errorf("follow does not show the recorded addresses:\n%.600s", out)
	}
	order := []string{"HELLO-ONE", "HELLO-TWO", "REPLY-ONE", "BIG:0123456789", big[len(big)-50:], "REPLY-LAST"}
	at := 0
	for _, s := range order {
		i := strings.Index(out[at:], s)
		if i < 0 {
			t.Fatalf("follow: %q missing or out of order", s)
		}
		at += i + len(s)
	}
	// follow prints each segment apart: the two segment boundaries each cut one repeat.
	if n := strings.Count(out, "0123456789"); n < 14998 {
		t.Errorf("follow shows %d of 15000 repeats of the big message", n)
	}

	// No analysis complaint anywhere, and valid checksums.
	if flagged := tshark(t, path, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
		"-Y", "tcp.analysis.flags or tcp.checksum.status == 0 or ip.checksum.status == 0 or udp.checksum.status == 0 or _ws.expert.severity >= warning"); flagged != "" {
		t.Errorf("tshark flags packets:\n%s", flagged)
	}

	// Handshake, segment sizes and the FIN exchange of the first flow.
	fields := tshark(t, path, "-Y", "tcp.stream == 0", "-T", "fields", "-e", "tcp.flags.str", "-e", "tcp.len", "-e", "tcp.seq", "-e", "tcp.ack")
	lines := strings.Split(strings.TrimSpace(fields), "\n")
	if len(lines) < 6 || !strings.Contains(lines[0], "S") || strings.Contains(lines[0], "A") ||
		!strings.Contains(lines[1], "A") || !strings.Contains(lines[1], "S") {
		t.Fatalf("no handshake:\n%s", fields)
	}
	var lens []string
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if f[1] != "0" {
			lens = append(lens, f[1])
		}
	}
	// The header's framing is line: each segment carries the message and its newline, as the wire did.
	if got := strings.Join(lens, " "); got != "11 11 11 65000 65000 20006 5 12" {
		t.Errorf("segment lengths %s", got)
	}
	last := lines[len(lines)-3:]
	if !strings.Contains(last[0], "F") || !strings.Contains(last[1], "F") || strings.Contains(last[2], "F") {
		t.Errorf("no FIN exchange at the end:\n%s", strings.Join(last, "\n"))
	}
	if comments := tshark(t, path, "-Y", "frame.comment", "-T", "fields", "-e", "frame.comment"); !strings.Contains(comments, "wirecat: peer went away") {
		t.Errorf("close error not in a packet comment: %q", comments)
	}

	// UDP datagrams go each way between the recorded addresses.
	udp := tshark(t, path, "-Y", "udp", "-T", "fields", "-e", "ip.src", "-e", "udp.srcport", "-e", "ip.dst", "-e", "udp.dstport", "-e", "udp.length")
	if want := "127.0.0.1\t41000\t127.0.0.1\t40124\t16\n127.0.0.1\t40124\t127.0.0.1\t41000\t16\n"; udp != want {
		t.Errorf("udp:\n%s\nwant\n%s", udp, want)
	}

	// IPv6, unix (synthetic), mixed families (mapped) and a flow without open.
	streams := tshark(t, path, "-Y", "tcp.flags.syn == 1 && tcp.flags.ack == 0", "-T", "fields",
		"-e", "tcp.stream", "-e", "ipv6.src", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ipv6.dst", "-e", "ip.dst", "-e", "tcp.dstport")
	want := "0\t\t127.0.0.1\t40000\t\t127.0.0.1\t40123\n" +
		"1\t::1\t\t51000\t::1\t\t40125\n" +
		"2\t\t127.0.0.1\t49156\t\t127.0.0.2\t40000\n" +
		"3\t::ffff:127.0.0.1\t\t52000\t::1\t\t40126\n" +
		"4\t\t127.0.0.1\t49158\t\t127.0.0.2\t40000\n"
	if streams != want {
		t.Errorf("flows:\n%s\nwant\n%s", streams, want)
	}
	for stream, payload := range map[string]string{"1": "SIX-HELLO", "2": "UNIX-HELLO", "3": "MIXED", "4": "NO-OPEN"} {
		if out := tshark(t, path, "-q", "-z", "follow,tcp,ascii,"+stream); !strings.Contains(out, payload) {
			t.Errorf("stream %s does not carry %s:\n%s", stream, payload, out)
		}
	}
}

// TestExportPcapDamaged exports up to the damage and reports it.
func TestExportPcapDamaged(t *testing.T) {
	file := record(t, []*event.Event{
		{Kind: event.Open, Time: t0, Conn: 1, Transport: "tcp", Role: event.Client, Local: "127.0.0.1:1", Remote: "127.0.0.1:2"},
		{Kind: event.Data, Time: t0, Conn: 1, From: event.Client, Data: []byte("kept")},
	})
	file = append(file, `{"t":1,"ev":"data","co`...)
	r, err := NewReader(bytes.NewReader(file), "d.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = ExportPcap(r, &out)
	if err == nil || err.Error() != "d.jsonl:4: truncated line" {
		t.Fatalf("error %v", err)
	}
	if !bytes.Contains(out.Bytes(), []byte("kept")) {
		t.Error("the data before the damage is not in the capture")
	}
}
