package link

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
)

// testCtx bounds every network test.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func needTool(t *testing.T, name string) string { t.Helper(); return e2e.NeedPath(t, name) }

func mustParse(t *testing.T, s string) Addr {
	t.Helper()
	a, err := Parse(s, false)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// addrOf turns a listener's address back into an Addr of the given scheme.
func addrOf(t *testing.T, scheme string, na net.Addr) Addr {
	t.Helper()
	if scheme == "unix" || scheme == "unixgram" {
		return Addr{Scheme: scheme, Path: na.String()}
	}
	return mustParse(t, scheme+"://"+na.String())
}

// echoOnce accepts one conn and echoes one line back upper-cased, then closes.
func echoOnce(t *testing.T, l net.Listener) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			done <- err
			return
		}
		_, err = io.WriteString(c, strings.ToUpper(line))
		done <- err
	}()
	return done
}

func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "hello wire\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "HELLO WIRE\n" {
		t.Fatalf("got %q, want %q", got, "HELLO WIRE\n")
	}
}

func TestStreamRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, listen string }{
		{"tcp", "tcp://127.0.0.1:0"},
		{"tcp4", "tcp4://127.0.0.1:0"},
		{"tcp6", "tcp6://[::1]:0"},
		{"unix", "unix://" + filepath.Join(dir, "s.sock")},
		{"unix-abstract", "unix://@wirecat-test-" + filepath.Base(dir)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			la := mustParse(t, tc.listen)
			l, err := Listen(ctx, la, nil)
			if err != nil {
				if tc.name == "tcp6" {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			defer l.Close()
			done := echoOnce(t, l)
			c, err := Dial(ctx, addrOf(t, la.Scheme, l.Addr()), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			roundTrip(t, c)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestHalfClose(t *testing.T) {
	dir := t.TempDir()
	for _, listen := range []string{"tcp://127.0.0.1:0", "unix://" + filepath.Join(dir, "h.sock"), "tls://127.0.0.1:0"} {
		t.Run(listen[:strings.Index(listen, ":")], func(t *testing.T) {
			ctx := testCtx(t)
			la := mustParse(t, listen)
			l, err := Listen(ctx, la, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			// The server reads until EOF, then answers: only a half-close lets it.
			done := make(chan error, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					done <- err
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				got, err := io.ReadAll(c)
				if err == nil {
					_, err = io.WriteString(c, "got "+string(got))
				}
				done <- err
			}()
			o := &Options{}
			if tl, ok := l.(*TLSListener); ok {
				o.TLS.Pin = tl.Fingerprint
			}
			c, err := Dial(ctx, addrOf(t, la.Scheme, l.Addr()), o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "request")
			if !CanCloseWrite(c) {
				t.Fatalf("CanCloseWrite(%T) = false", c)
			}
			if err := CloseWrite(c); err != nil {
				t.Fatal(err)
			}
			reply, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if string(reply) != "got request" {
				t.Fatalf("reply %q", reply)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPacketRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, listen string }{
		{"udp", "udp://127.0.0.1:0"},
		{"udp6", "udp6://[::1]:0"},
		{"unixgram", "unixgram://" + filepath.Join(dir, "g.sock")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			la := mustParse(t, tc.listen)
			pc, err := ListenPacket(ctx, la, nil)
			if err != nil {
				if tc.name == "udp6" {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			defer pc.Close()
			pc.SetDeadline(time.Now().Add(5 * time.Second))
			c, err := Dial(ctx, addrOf(t, la.Scheme, pc.LocalAddr()), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if CanCloseWrite(c) {
				t.Errorf("CanCloseWrite(%T) = true for a datagram conn", c)
			}
			if err := CloseWrite(c); err != nil {
				t.Errorf("CloseWrite on a datagram conn: %v", err)
			}
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if string(buf[:n]) != "ping" {
				t.Fatalf("server got %q", buf[:n])
			}
			if _, err := pc.WriteTo([]byte("pong"), from); err != nil {
				t.Fatalf("reply to %v: %v", from, err)
			}
			n, err = c.Read(buf)
			if err != nil || string(buf[:n]) != "pong" {
				t.Fatalf("client got %q, %v", buf[:n], err)
			}
		})
	}
}

func TestUnixSocketFile(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	a := mustParse(t, "unix://"+path)

	// A stale socket file (its listener gone without unlinking) is replaced.
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	l, err := Listen(ctx, a, nil)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}

	// A live one is refused.
	_, err = Listen(ctx, a, nil)
	want := "listen unix://" + path + ": address already in use (another process is listening on it)"
	if err == nil || err.Error() != want {
		t.Fatalf("second listen: %v, want %s", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("errors.Is(err, EADDRINUSE) = false")
	}
	// ... without connecting: a one-shot listener would take that probe as
	// its peer (issue 9).
	if runtime.GOOS == "linux" {
		ul := l.(*net.UnixListener)
		ul.SetDeadline(time.Now().Add(100 * time.Millisecond))
		if c, err := ul.Accept(); err == nil {
			c.Close()
			t.Fatal("the second listen connected to the first to probe it")
		}
		ul.SetDeadline(time.Time{})
	}

	// Close removes the file.
	l.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file after Close: %v", err)
	}

	// A regular file is never removed.
	os.WriteFile(path, []byte("data"), 0o644)
	_, err = Listen(ctx, a, nil)
	if err == nil || !strings.HasSuffix(err.Error(), ": file exists and is not a socket") {
		t.Fatalf("listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "data" {
		t.Fatal("regular file was touched")
	}

	// unixgram: same, and the file goes on Close.
	ga := mustParse(t, "unixgram://"+filepath.Join(dir, "g.sock"))
	pc, err := ListenPacket(ctx, ga, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ListenPacket(ctx, ga, nil); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("second unixgram listen: %v", err)
	}
	pc.Close()
	if _, err := os.Stat(ga.Path); !os.IsNotExist(err) {
		t.Fatalf("unixgram file after Close: %v", err)
	}
}

func TestErrors(t *testing.T) {
	ctx := testCtx(t)
	// A port nobody listens on: take one, then free it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	a := mustParse(t, "127.0.0.1:"+strconv.Itoa(port))
	_, err = Dial(ctx, a, nil)
	if want := "connect tcp://127.0.0.1:" + strconv.Itoa(port) + ": connection refused"; err == nil || err.Error() != want {
		t.Fatalf("dial: %v, want %s", err, want)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Error("errors.Is(err, ECONNREFUSED) = false")
	}

	_, err = Dial(ctx, mustParse(t, "unix://"+filepath.Join(t.TempDir(), "none.sock")), nil)
	if err == nil || !strings.HasSuffix(err.Error(), "none.sock: no such file or directory") {
		t.Fatalf("dial missing unix socket: %v", err)
	}

	busy, err := Listen(ctx, mustParse(t, "127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ba := addrOf(t, "tcp", busy.Addr())
	_, err = Listen(ctx, ba, nil)
	if want := "listen " + ba.String() + ": address already in use"; err == nil || err.Error() != want {
		t.Fatalf("listen in use: %v, want %s", err, want)
	}

	_, err = Listen(ctx, mustParse(t, "udp://127.0.0.1:0"), nil)
	if want := "listen udp://127.0.0.1:0: udp is a datagram transport (use ListenPacket)"; err == nil || err.Error() != want {
		t.Fatalf("Listen(udp): %v, want %s", err, want)
	}
	_, err = ListenPacket(ctx, mustParse(t, "tls://127.0.0.1:0"), nil)
	if want := "listen tls://127.0.0.1:0: tls is a stream transport (use Listen)"; err == nil || err.Error() != want {
		t.Fatalf("ListenPacket(tls): %v, want %s", err, want)
	}

	// No real lookup: only loopback traffic in tests.
	dnsErr := &OpError{Op: "connect", Addr: mustParse(t, "nohost.example:80"), Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nohost.example", IsNotFound: true}}}
	if want := `connect tcp://nohost.example:80: cannot resolve "nohost.example": no such host`; dnsErr.Error() != want {
		t.Fatalf("dns error: %v, want %s", dnsErr, want)
	}

	short, cancel := context.WithCancel(ctx)
	cancel()
	_, err = Dial(short, a, nil)
	if err == nil || !strings.HasSuffix(err.Error(), ": canceled") {
		t.Fatalf("dial with canceled ctx: %v", err)
	}
}
