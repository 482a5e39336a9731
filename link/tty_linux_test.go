package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openSlave opens a pty's slave side as a host program would.
func openSlave(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readFull(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPTYListen: the symlink appears, Accept waits for the opener, bytes
// pass raw both ways (no echo, no CR/LF mangling), the opener's close is
// EOF, and Close removes the symlink.
func TestPTYListen(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyV0")
	a, _ := Parse("pty:"+link, false)
	var said []string
	ln, err := Listen(context.Background(), a, &Options{Log: func(f string, args ...any) { said = append(said, f) }})
	if err != nil {
		t.Fatal(err)
	}
	slave := ln.Addr().String()
	if got, _ := os.Readlink(link); got != slave || !strings.HasPrefix(slave, "/dev/pts/") {
		t.Fatalf("symlink %s -> %q, want %q", link, got, slave)
	}
	if len(said) != 1 {
		t.Errorf("want one line naming the pty, got %q", said)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	select {
	case <-accepted:
		t.Fatal("accepted with nobody on the slave side")
	case <-time.After(100 * time.Millisecond):
	}
	s := openSlave(t, link)
	c := <-accepted
	s.Write([]byte("AT\r\n\x00\xff"))
	if got := readFull(t, c, 6); got != "AT\r\n\x00\xff" {
		t.Fatalf("read %q", got)
	}
	c.Write([]byte("OK\r\n"))
	b := make([]byte, 4)
	if _, err := io.ReadFull(s, b); err != nil || string(b) != "OK\r\n" {
		t.Fatalf("slave read %q, %v", b, err)
	}
	s.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(b); err != io.EOF {
		t.Fatalf("after the opener closed: %v, want EOF", err)
	}
	c.Close()

	// A second opener is the next peer, on the same pty.
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	s = openSlave(t, link)
	c = <-accepted
	if c == nil {
		t.Fatal("second Accept failed")
	}
	s.Write([]byte("again"))
	if got := readFull(t, c, 5); got != "again" {
		t.Fatalf("read %q", got)
	}
	ln.Close() // a one-shot listener closes once it has its peer: the session goes on
	c.Write([]byte("still"))
	b = make([]byte, 5)
	if _, err := io.ReadFull(s, b); err != nil || string(b) != "still" {
		t.Fatalf("after the listener closed, slave read %q, %v", b, err)
	}
	c.Close()
	s.Close()
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("symlink left behind: %v", err)
	}
}

// TestPTYListenCloseWakesAccept: closing a listener nobody opened ends Accept.
func TestPTYListenCloseWakesAccept(t *testing.T) {
	ln, err := Listen(context.Background(), Addr{Scheme: "pty"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept = %v, want net.ErrClosed", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Accept still blocked a second after Close")
	}
}

// TestPTYLinkRefusesFile: a path that is a regular file is not replaced.
func TestPTYLinkRefusesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("keep"), 0o644)
	_, err := Listen(context.Background(), Addr{Scheme: "pty", Path: p}, nil)
	if err == nil || !strings.Contains(err.Error(), "exists and is not a symlink") {
		t.Fatalf("Listen over a file: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "keep" {
		t.Error("file was touched")
	}
}

// TestSerialOverPTY opens a pty's slave side as a serial port: settings
// apply, a second open is refused as busy, and the far end vanishing is
// ErrDeviceGone after the bytes it sent.
func TestSerialOverPTY(t *testing.T) {
	h, err := newPTY(Addr{Scheme: "pty"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	a, _ := Parse("serial:"+h.slave+"?baud=9600&parity=even&bits=7&stop=2", false)
	var said []string
	c, err := Dial(context.Background(), a, &Options{Log: func(f string, args ...any) { said = append(said, fmt.Sprintf(f, args...)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(said) != 1 || !strings.Contains(said[0], "the driver kept 8 data bits and no parity") {
		t.Errorf("want one notice that the pty kept 8N, got %q", said)
	}
	control(c.(*ttyConn).f, func(fd int) error {
		tio, err := unix.IoctlGetTermios(fd, unix.TCGETS2)
		if err != nil {
			t.Fatal(err)
		}
		// A pty keeps 8 bits and no parity whatever it is told (and
		// Dial said so); the rate, stop bits and raw mode stick.
		if tio.Ospeed != 9600 || tio.Cflag&unix.CSTOPB == 0 || tio.Lflag&(unix.ECHO|unix.ICANON) != 0 || tio.Oflag&unix.OPOST != 0 {
			t.Errorf("termios not applied: speed %d cflag %#x lflag %#x", tio.Ospeed, tio.Cflag, tio.Lflag)
		}
		return nil
	})
	if _, err := Dial(context.Background(), a, nil); err == nil || !strings.Contains(err.Error(), "device or resource busy") {
		t.Errorf("second open: %v, want busy", err)
	}
	h.master.Write([]byte("last words"))
	if got := readFull(t, c, 10); got != "last words" {
		t.Fatalf("read %q", got)
	}
	h.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 10))
	if !errors.Is(err, ErrDeviceGone) || !strings.Contains(Cause(err), "the device went away") {
		t.Fatalf("after the far end vanished: %v, want ErrDeviceGone", err)
	}
}

func TestSerialOpenErrors(t *testing.T) {
	missing, _ := Parse("serial:/dev/wirecat-no-such-tty", false)
	_, err := Dial(context.Background(), missing, nil)
	if err == nil || !strings.Contains(err.Error(), "wirecat ports") {
		t.Errorf("missing device: %v", err)
	}
	notTTY, _ := Parse("serial:/dev/null", false)
	if _, err = Dial(context.Background(), notTTY, nil); err == nil || !strings.Contains(err.Error(), "not a serial port") {
		t.Errorf("/dev/null: %v", err)
	}
}

// TestPTYQuickOpener: a program that opens, writes and closes between two
// looks of the listener (`echo hi > /tmp/ttyV0`) is still a session: its
// bytes, then EOF.
func TestPTYQuickOpener(t *testing.T) {
	ln, err := Listen(context.Background(), Addr{Scheme: "pty"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := openSlave(t, ln.Addr().String())
	s.Write([]byte("hi\n"))
	s.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if string(b) != "hi\n" || err != nil {
		t.Fatalf("read %q, %v; want hi and EOF", b, err)
	}
}

// TestPTYSessionEndedByUs: a session wirecat closes (a relay whose target
// refused) while its opener stays does not start again with that opener;
// what it wrote meanwhile is dropped; the next opener is the next session.
func TestPTYSessionEndedByUs(t *testing.T) {
	ln, err := Listen(context.Background(), Addr{Scheme: "pty"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := openSlave(t, ln.Addr().String())
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	next := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); next <- c }()
	select {
	case <-next:
		t.Fatal("a new session with the opener whose session wirecat ended")
	case <-time.After(200 * time.Millisecond):
	}
	s.Write([]byte("stale"))
	time.Sleep(50 * time.Millisecond)
	s.Close()
	time.Sleep(100 * time.Millisecond)
	s = openSlave(t, ln.Addr().String())
	defer s.Close()
	s.Write([]byte("fresh"))
	c = <-next
	if c == nil {
		t.Fatal("no session for the next opener")
	}
	defer c.Close()
	if got := readFull(t, c, 5); got != "fresh" {
		t.Fatalf("read %q, want fresh (the old opener's bytes dropped)", got)
	}
}

func TestCheckRate(t *testing.T) {
	for _, tc := range []struct {
		want, got int
		ok        bool
	}{
		{115200, 115200, true},
		{250000, 250000, true},
		{115200, 117647, true}, // an 8 MHz divider's nearest: 2.1% off
		{12345, 9600, false},
		{3000000, 0, false},
		{9600, 9900, false}, // 3.1% off
	} {
		err := checkRate(tc.want, tc.got)
		if (err == nil) != tc.ok {
			t.Errorf("checkRate(%d, %d) = %v, want ok %v", tc.want, tc.got, err, tc.ok)
		}
		want := fmt.Sprintf("the port cannot do %d baud (the driver set %d)", tc.want, tc.got)
		if tc.got == 0 {
			want = fmt.Sprintf("the port cannot do %d baud (the driver refused it)", tc.want)
		}
		if err != nil && err.Error() != want {
			t.Errorf("message %q", err)
		}
	}
}
