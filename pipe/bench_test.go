package pipe

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/output"
	"github.com/wirecat-dev/wirecat/proto"
)

// BenchmarkServeLines measures 64-byte lines from a TCP peer to an output
// in lines mode: the --frame line -o lines path.
func BenchmarkServeLines(b *testing.B) {
	for _, spec := range []string{"raw", "line"} {
		b.Run(spec, func(b *testing.B) {
			f, err := proto.Parse(spec, nil)
			if err != nil {
				b.Fatal(err)
			}
			mode := "lines"
			if spec == "raw" {
				mode = "raw"
			}
			out, _ := output.New(io.Discard, output.Options{Mode: mode})
			chunk := bytes.Repeat(append(bytes.Repeat([]byte("x"), 63), '\n'), 1024)
			b.SetBytes(int64(len(chunk)))
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					return
				}
				for i := 0; i < b.N; i++ {
					c.Write(chunk)
				}
				c.Close()
			}()
			c, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			cfg := &Config{Framer: f, MaxFrame: 1 << 20, Sink: event.Tee(out), Flush: out.Flush}
			b.ResetTimer()
			if err := Serve(context.Background(), c, Meta{ID: 1, Role: event.Server}, cfg, nil); err != nil {
				b.Fatal(err)
			}
		})
	}
}
