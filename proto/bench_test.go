package proto

import (
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

var benchSpecs = []struct{ name, spec string }{
	{"raw", "raw"}, {"line", "line"}, {"crlf", "crlf"}, {"delim", "delim:,"}, {"delim-END", "delim:END"},
	{"len-u16be", "len:u16be"}, {"len-varint", "len:varint"}, {"fixed", "fixed:128"},
	{"slip", "slip"}, {"cobs", "cobs"},
}

// loopReader serves data over and over until left bytes were served, the
// way a socket hands over a steady stream.
type loopReader struct {
	data []byte
	off  int
	left int
}

func (l *loopReader) Read(p []byte) (int, error) {
	if l.left == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), l.left)], l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	l.left -= n
	return n, nil
}

// benchMessages returns about 1 MiB of messages of lo to hi random bytes,
// a special byte (terminator, escape, zero) one time in 64.
func benchMessages(spec string, lo, hi int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var msgs [][]byte
	for total := 0; total < 1<<20; {
		size := lo + rng.IntN(hi-lo+1)
		if spec == "fixed:128" {
			size = 128
		}
		m := sanitize(spec, messageFrom(rng, size, 64))
		msgs = append(msgs, m)
		total += size
	}
	return msgs
}

func benchDecode(b *testing.B, lo, hi int) {
	for _, bs := range benchSpecs {
		b.Run(bs.name, func(b *testing.B) {
			f := mustParse(b, bs.spec)
			var stream []byte
			for _, m := range benchMessages(bs.spec, lo, hi) {
				stream, _ = f.Encode(stream, m)
			}
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			r := NewReader(&loopReader{data: stream, left: b.N * len(stream)}, f, 0)
			for {
				if _, err := r.Next(); err != nil {
					if err != io.EOF {
						b.Fatal(err)
					}
					break
				}
			}
			reportCPU(b, cpu, b.N*len(stream))
		})
	}
}

// BenchmarkDecode reads sensor-sized messages (16-256 bytes) through a Reader.
func BenchmarkDecode(b *testing.B) { benchDecode(b, 16, 256) }

// BenchmarkDecodeLarge reads 1-4 KiB messages through a Reader.
func BenchmarkDecodeLarge(b *testing.B) { benchDecode(b, 1024, 4096) }

func BenchmarkEncode(b *testing.B) {
	for _, bs := range benchSpecs {
		b.Run(bs.name, func(b *testing.B) {
			f := mustParse(b, bs.spec)
			msgs := benchMessages(bs.spec, 16, 256)
			total := 0
			for _, m := range msgs {
				total += len(m)
			}
			b.SetBytes(int64(total))
			b.ReportAllocs()
			dst := make([]byte, 0, 4096)
			cpu := cpuTime()
			for b.Loop() {
				for _, m := range msgs {
					dst, _ = f.Encode(dst[:0], m)
				}
			}
			reportCPU(b, cpu, b.N*total)
		})
	}
}

// reportCPU adds MB/s per CPU second, steadier than wall-clock MB/s when
// other processes share the machine.
func reportCPU(b *testing.B, since time.Duration, bytes int) {
	if d := cpuTime() - since; d > 0 && since > 0 {
		b.ReportMetric(float64(bytes)/1e6/d.Seconds(), "cpuMB/s")
	}
}
