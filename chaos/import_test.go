package chaos

import (
	"bufio"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// pcapGen writes a classic pcap of interleaved TCP conversations (with
// retransmitted and out-of-order segments) and UDP datagrams.
type pcapGen struct {
	w     *bufio.Writer
	ts    time.Time
	frame []byte
	bytes int64 // payload bytes a reader of the streams gets
}

func (g *pcapGen) packet(tcp bool, src, dst [4]byte, sp, dp uint16, seq uint32, flags byte, payload []byte) {
	l4 := 8
	if tcp {
		l4 = 20
	}
	f := g.frame[:0]
	f = append(f, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00) // Ethernet, IPv4
	total := 20 + l4 + len(payload)
	proto := byte(17)
	if tcp {
		proto = 6
	}
	f = append(f, 0x45, 0, byte(total>>8), byte(total), 0, 0, 0x40, 0, 64, proto, 0, 0)
	f = append(f, src[:]...)
	f = append(f, dst[:]...)
	f = binary.BigEndian.AppendUint16(f, sp)
	f = binary.BigEndian.AppendUint16(f, dp)
	if tcp {
		f = binary.BigEndian.AppendUint32(f, seq)
		f = append(f, 0, 0, 0, 0, 0x50, flags|0x10, 0xff, 0xff, 0, 0, 0, 0)
	} else {
		f = binary.BigEndian.AppendUint16(f, uint16(8+len(payload)))
		f = append(f, 0, 0)
	}
	f = append(f, payload...)
	g.frame = f
	g.ts = g.ts.Add(3 * time.Microsecond)
	var h [16]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(g.ts.Unix()))
	binary.LittleEndian.PutUint32(h[4:], uint32(g.ts.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(h[8:], uint32(len(f)))
	binary.LittleEndian.PutUint32(h[12:], uint32(len(f)))
	g.w.Write(h[:])
	g.w.Write(f)
}

// writeCapture writes about size bytes of capture to path.
func writeCapture(t *testing.T, path string, size int64) (payload int64) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := &pcapGen{w: bufio.NewWriterSize(f, 1<<20), ts: time.Unix(1700000000, 0), frame: make([]byte, 0, 2048)}
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	g.w.Write(hdr[:])
	rng := rand.New(rand.NewPCG(1, 2))
	text := make([]byte, 1500)
	for i := range text {
		text[i] = byte(' ' + i%90)
	}
	bin := make([]byte, 1500)
	for i := range bin {
		bin[i] = byte(rng.IntN(256))
	}
	type conv struct {
		port     uint16
		seq      [2]uint32
		sent     int
		held     []byte // a segment sent late (out of order)
		heldSeq  uint32
		heldSide int
	}
	srv, cli := [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}
	var written int64 = 24
	nextPort := uint16(20000)
	newConv := func() *conv {
		nextPort++
		c := &conv{port: nextPort, seq: [2]uint32{1000, 9000}}
		g.packet(true, cli, srv, c.port, 1883, c.seq[0], 0x02, nil)
		g.packet(true, srv, cli, 1883, c.port, c.seq[1], 0x12, nil)
		c.seq[0]++
		c.seq[1]++
		return c
	}
	convs := make([]*conv, 64)
	for i := range convs {
		convs[i] = newConv()
	}
	for written < size {
		i := rng.IntN(len(convs))
		c := convs[i]
		side := rng.IntN(2)
		src, dst, sp, dp := cli, srv, c.port, uint16(1883)
		if side == 1 {
			src, dst, sp, dp = srv, cli, 1883, c.port
		}
		n := 64 + rng.IntN(1385)
		data := text[:n]
		if rng.IntN(4) == 0 {
			data = bin[:n]
		}
		flags := byte(0)
		if rng.IntN(3) == 0 {
			flags = 0x08
		}
		switch r := rng.IntN(100); {
		case r < 2 && c.held == nil: // out of order: this one goes after the next
			c.held, c.heldSeq, c.heldSide = data, c.seq[side], side
			c.seq[side] += uint32(n)
			g.bytes += int64(n)
			written += int64(16 + 54 + n)
			continue
		case r < 4: // a retransmission of the last bytes sent
			g.packet(true, src, dst, sp, dp, c.seq[side]-uint32(min(n, 64)), flags, data[:min(n, 64)])
			written += int64(16 + 54 + min(n, 64))
		case r < 6: // a UDP datagram on the side
			g.packet(false, src, dst, sp+10000, dp+10000, 0, 0, data)
			g.bytes += int64(n)
			written += int64(16 + 42 + n)
			continue
		}
		g.packet(true, src, dst, sp, dp, c.seq[side], flags, data)
		c.seq[side] += uint32(n)
		g.bytes += int64(n)
		written += int64(16 + 54 + n)
		if c.held != nil && c.heldSide == side {
			s, d, a, b := cli, srv, c.port, uint16(1883)
			if side == 1 {
				s, d, a, b = srv, cli, 1883, c.port
			}
			g.packet(true, s, d, a, b, c.heldSeq, 0x08, c.held)
			c.held = nil
		}
		c.sent++
		if c.sent > 2000 && c.held == nil { // close and open another
			g.packet(true, cli, srv, c.port, 1883, c.seq[0], 0x01, nil)
			g.packet(true, srv, cli, 1883, c.port, c.seq[1], 0x01, nil)
			convs[i] = newConv()
		}
	}
	if err := g.w.Flush(); err != nil {
		t.Fatal(err)
	}
	// Held segments still pending at the end are never sent: holes.
	for _, c := range convs {
		if c.held != nil {
			g.bytes -= int64(len(c.held))
		}
	}
	return g.bytes
}

var importedBytes = regexp.MustCompile(`(\d+) messages, (\d+) bytes`)

// import of a big capture: throughput and peak memory (issue 14's target:
// a 1 GiB capture at 200 MB/s or more, under 128 MiB), and every payload
// byte of the capture accounted for.
func TestImportThroughput(t *testing.T) {
	size := int64(64 << 20)
	if *soak {
		size = 1 << 30
	}
	dir := t.TempDir()
	capPath := filepath.Join(dir, "big.pcap")
	want := writeCapture(t, capPath, size)
	st, _ := os.Stat(capPath)
	cmd := exec.Command(e2e.Bin, "import", "-v", capPath, filepath.Join(dir, "big.jsonl"))
	var stderr e2e.Buffer
	cmd.Stderr = &stderr
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("import: %v: %s", err, stderr.String())
		}
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("import did not finish in 5 minutes")
	}
	el := time.Since(begin)
	peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
	m := importedBytes.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no summary: %s", stderr.String())
	}
	got, _ := strconv.ParseInt(m[2], 10, 64)
	if got != want {
		t.Errorf("imported %d payload bytes, the capture carries %d", got, want)
	}
	rate := float64(st.Size()) / el.Seconds() / 1e6
	figure(t, "import throughput", "%.0f MB/s (%d MB capture in %v, %s messages)", rate, st.Size()>>20, el.Round(time.Millisecond), m[1])
	figure(t, "import peak RSS", "%d MiB", peak>>20)
	if peak > 128<<20 && !raceEnabled {
		t.Errorf("peak RSS %d MiB, want under 128 MiB", peak>>20)
	}
	if *soak && rate < 200 {
		t.Errorf("%.0f MB/s, want 200 MB/s or more", rate)
	}
}
