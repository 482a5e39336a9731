package relay

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// streamPair returns both ends of a loopback connection of network.
func streamPair(t *testing.T, network string) (net.Conn, net.Conn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// copyIdle moves every byte, at sizes around its buffer's and a pipe's,
// from TCP or Unix to TCP or Unix, and ends at the source's end.
func TestCopyIdleExactBytes(t *testing.T) {
	sizes := []int{0, 1, copyBufSize - 1, copyBufSize, copyBufSize + 1, maxSpliceSize() + 1, 5 << 20}
	for _, from := range []string{"tcp", "unix"} {
		for _, to := range []string{"tcp", "unix"} {
			for _, size := range sizes {
				t.Run(fmt.Sprintf("%s-%s-%d", from, to, size), func(t *testing.T) {
					in, src := streamPair(t, from)
					dst, out := streamPair(t, to)
					want := make([]byte, size)
					rand.Read(want)
					go func() {
						in.Write(want)
						in.Close()
					}()
					done := make(chan error, 1)
					var n int64
					go func() {
						var err error
						n, err = copyIdle(dst, src)
						dst.Close()
						done <- err
					}()
					out.SetReadDeadline(time.Now().Add(20 * time.Second))
					got, err := io.ReadAll(out)
					if err != nil {
						t.Fatal(err)
					}
					if err := <-done; err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) || n != int64(size) {
						t.Fatalf("moved %d (counted %d) of %d bytes, equal %v", len(got), n, size, bytes.Equal(got, want))
					}
				})
			}
		}
	}
}

// An idle direction holds no pipe, and the pipes lent for bursts are
// closed a moment after the last one.
func TestCopyIdleHoldsNoDescriptors(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts /proc/self/fd")
	}
	count := func() int { ents, _ := os.ReadDir("/proc/self/fd"); return len(ents) }
	idlePipes := func() int { pipes.mu.Lock(); defer pipes.mu.Unlock(); return len(pipes.idle) }
	deadline := time.Now().Add(3 * pipeIdle)
	for idlePipes() > 0 { // what earlier tests left
		if time.Now().After(deadline) {
			t.Fatal("idle pipes never closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	const pairs = 20
	var ins, outs []net.Conn
	base := count()
	for range pairs {
		in, src := streamPair(t, "tcp")
		dst, out := streamPair(t, "tcp")
		go copyIdle(dst, src)
		ins, outs = append(ins, in), append(outs, out)
	}
	withConns := count()
	// A burst through every pair, then silence.
	msg := bytes.Repeat([]byte("x"), 256<<10)
	for i := range ins {
		ins[i].Write(msg)
		outs[i].SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(outs[i], make([]byte, len(msg))); err != nil {
			t.Fatal(err)
		}
	}
	if idlePipes() == 0 {
		t.Fatal("no pipe was lent: the bursts did not splice")
	}
	deadline = time.Now().Add(3 * pipeIdle)
	for count() > withConns {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors for %d idle pairs of 4 sockets (want %d)", count()-base, pairs, withConns-base)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
