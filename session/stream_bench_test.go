package session

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"testing"

	"github.com/wirecat-dev/wirecat/event"
)

// BenchmarkRecordTCP estimates what recording costs a line-framed TCP
// stream: 64 MiB over loopback, cut into lines, each line emitted to
// nothing, to a Writer, or to a batching Writer.
func BenchmarkRecordTCP(b *testing.B) {
	for _, lineLen := range []int{64, 1024} {
		for _, mode := range []string{"none", "record", "record-batch"} {
			b.Run(fmt.Sprintf("line%d/%s", lineLen, mode), func(b *testing.B) {
				benchRecordTCP(b, lineLen, mode)
			})
		}
	}
}

func benchRecordTCP(b *testing.B, lineLen int, mode string) {
	const total = 64 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	chunk := bytes.Repeat(append(bytes.Repeat([]byte("x"), lineLen-1), '\n'), (256<<10)/lineLen)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			for sent := 0; sent < total; sent += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					break
				}
			}
			c.Close()
		}
	}()
	var sink event.Sink = event.Discard
	if mode != "none" {
		dir := os.Getenv("WIRECAT_BENCH_DIR") // e.g. /dev/shm to leave the disk out
		if dir == "" {
			dir = b.TempDir()
		}
		f, err := os.CreateTemp(dir, "bench-*.jsonl")
		if err != nil {
			b.Fatal(err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		w, err := NewWriter(f, testHeader())
		if err != nil {
			b.Fatal(err)
		}
		if mode == "record-batch" {
			w.Batch()
		}
		defer w.Close()
		sink = w
	}
	b.SetBytes(total)
	for b.Loop() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		r := bufio.NewReaderSize(c, 64<<10)
		e := &event.Event{Kind: event.Data, Conn: 1, From: event.Server}
		for {
			line, err := r.ReadSlice('\n')
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			e.Data = line[:len(line)-1]
			sink.Emit(e)
		}
		c.Close()
	}
}
