//go:build unix

package link

import (
	"errors"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func soBroadcast(t *testing.T, c syscall.Conn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	rc.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST) })
	if serr != nil {
		t.Fatal(serr)
	}
	return v
}

// Broadcast is checked without sending anything: a connected UDP socket to
// 255.255.255.255 is refused by the kernel unless SO_BROADCAST is set.
func TestBroadcast(t *testing.T) {
	ctx := testCtx(t)
	a := mustParse(t, "udp4://255.255.255.255:9")
	_, err := Dial(ctx, a, nil)
	if errors.Is(err, syscall.ENETUNREACH) {
		t.Skip("no route to the broadcast address")
	}
	if want := "connect udp4://255.255.255.255:9: permission denied (a broadcast address needs --broadcast)"; err == nil || err.Error() != want {
		t.Fatalf("dial without --broadcast: %v, want %s", err, want)
	}
	c, err := Dial(ctx, a, &Options{Broadcast: true})
	if err != nil {
		t.Fatalf("dial with --broadcast: %v", err)
	}
	defer c.Close()
	if v := soBroadcast(t, c.(*net.UDPConn)); v == 0 {
		t.Fatal("SO_BROADCAST not set on the dialed conn")
	}

	for _, on := range []bool{false, true} {
		pc, err := ListenPacket(ctx, mustParse(t, "udp://127.0.0.1:0"), &Options{Broadcast: on})
		if err != nil {
			t.Fatal(err)
		}
		if v := soBroadcast(t, pc.(*net.UDPConn)); (v != 0) != on {
			t.Errorf("ListenPacket Broadcast=%v: SO_BROADCAST=%d", on, v)
		}
		pc.Close()
	}
}

// Multicast over loopback only: the group is joined on lo and the sender
// leaves by lo.
func TestMulticast(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("multicast interface selection is linux-only")
	}
	ctx := testCtx(t)
	lo, err := loopbackInterface()
	if err != nil {
		t.Skip(err)
	}
	o := &Options{Interface: lo.Name}
	group := mustParse(t, "udp4://239.77.1.2:0")
	pc, err := ListenPacket(ctx, group, o)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	group.Port = strings.TrimPrefix(pc.LocalAddr().String()[strings.LastIndex(pc.LocalAddr().String(), ":"):], ":")
	c, err := Dial(ctx, group, o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	// Datagrams may be lost: send a few, expect one.
	for i := 0; i < 5; i++ {
		if _, err := c.Write([]byte("hello group")); err != nil {
			t.Fatal(err)
		}
		pc.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err == nil {
			if string(buf[:n]) != "hello group" {
				t.Fatalf("got %q", buf[:n])
			}
			return
		}
	}
	t.Fatal("no multicast datagram arrived over loopback")
}

func TestMulticastBadInterface(t *testing.T) {
	_, err := ListenPacket(testCtx(t), mustParse(t, "udp://239.77.1.2:5000"), &Options{Interface: "nosuchif0"})
	if want := `listen udp://239.77.1.2:5000: no network interface "nosuchif0"`; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}
