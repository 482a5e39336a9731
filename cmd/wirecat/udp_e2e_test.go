package main

// Issue 2: UDP — send with --replies against a socat echo, listen -u
// answering the latest or every peer, and a multicast group joined on
// loopback.

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// udpClient is a connected UDP socket on loopback with a read deadline.
func udpClient(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readDatagram reads one datagram within d ("" on timeout).
func readDatagram(c net.Conn, d time.Duration) string {
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func TestUDPSendRepliesFromSocatEcho(t *testing.T) {
	need(t, "socat")
	port := freeUDPPort(t)
	start(t, "socat", fmt.Sprintf("UDP4-RECVFROM:%d,bind=127.0.0.1,fork", port), "EXEC:cat")
	waitUDP(t, port)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	begin := time.Now()
	out, stderr, code := runWirecat(t, "", 10*time.Second, "send", "-u", addr, "--frame", "line", "one", "two", "--interval", "50ms", "--replies", "2", "--wait", "5s")
	if code != 0 || out != "one\ntwo\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if took := time.Since(begin); took > 4*time.Second {
		t.Fatalf("--replies 2 should exit on the second reply, took %v", took)
	}
	// The scheme says UDP without -u.
	out, stderr, code = runWirecat(t, "", 10*time.Second, "send", "udp://"+addr, `\x01\x02`, "--replies", "1", "-o", "hex")
	if code != 0 || !strings.Contains(out, "01 02") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	// Nothing answers on a port nobody uses: unmet, exit 3.
	_, stderr, code = runWirecat(t, "", 10*time.Second, "send", "-u", fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t)), "ping", "--replies", "1", "--wait", "300ms")
	if code != 3 && code != 1 {
		t.Fatalf("no reply: exit %d, stderr %q", code, stderr)
	}
}

func TestUDPListenAnswers(t *testing.T) {
	t.Run("latest peer", func(t *testing.T) {
		port := freeUDPPort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		wc := start(t, "wirecat", "listen", "-u", addr, "--frame", "line")
		waitUDP(t, port)
		a, b := udpClient(t, addr), udpClient(t, addr)
		a.Write([]byte("from a\n"))
		wc.waitOutput("from a\n", 10*time.Second)
		b.Write([]byte("from b\n"))
		wc.waitOutput("from b\n", 10*time.Second)
		fmt.Fprint(wc.stdin, "answer\n")
		if got := readDatagram(b, 5*time.Second); got != "answer\n" {
			t.Fatalf("the latest peer got %q", got)
		}
		if got := readDatagram(a, 300*time.Millisecond); got != "" {
			t.Fatalf("an earlier peer got %q: without -k only the latest is answered", got)
		}
	})
	t.Run("every peer with -k", func(t *testing.T) {
		port := freeUDPPort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		wc := start(t, "wirecat", "listen", "-u", "-k", addr, "--frame", "line", "-o", "text")
		waitUDP(t, port)
		peers := make([]*net.UDPConn, 3)
		for i := range peers {
			peers[i] = udpClient(t, addr)
			fmt.Fprintf(peers[i], "sensor %d\n", i)
			wc.waitOutput(fmt.Sprintf("sensor %d", i), 10*time.Second)
		}
		fmt.Fprint(wc.stdin, "all hear this\n")
		for i, c := range peers {
			if got := readDatagram(c, 5*time.Second); got != "all hear this\n" {
				t.Fatalf("peer %d got %q", i, got)
			}
			tag := c.LocalAddr().String() + " ← sensor " + strconv.Itoa(i)
			if !strings.Contains(wc.stdout.String(), tag) {
				t.Fatalf("peer %d not tagged %q:\n%s", i, tag, wc.stdout)
			}
		}
	})
}

// joinLoopback reports whether this kernel lets a socket join a group on
// loopback, which the multicast test needs.
func joinLoopback(t *testing.T, group string) {
	t.Helper()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no lo interface: %v", err)
	}
	c, err := net.ListenMulticastUDP("udp4", lo, &net.UDPAddr{IP: net.ParseIP(group), Port: freeUDPPort(t)})
	if err != nil {
		t.Skipf("the kernel refuses multicast on lo: %v", err)
	}
	c.Close()
}

func TestUDPMulticastGroupOnLoopback(t *testing.T) {
	const group = "239.1.2.3"
	joinLoopback(t, group)
	port := freeUDPPort(t)
	addr := fmt.Sprintf("udp://%s:%d", group, port)
	wc := start(t, "wirecat", "listen", addr, "--interface", "lo", "--frame", "line", "-o", "text")
	waitUDP(t, port)
	// wirecat sends to the group out of lo.
	out, stderr, code := runWirecat(t, "", 10*time.Second, "send", addr, "--interface", "lo", "--frame", "line", "to the group", "--wait", "0")
	if code != 0 {
		t.Fatalf("send to the group: exit %d, %s %s", code, out, stderr)
	}
	wc.waitOutput("← to the group", 10*time.Second)

	t.Run("python sender", func(t *testing.T) {
		need(t, "python3")
		py := `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton('127.0.0.1'))
s.sendto(b'from python\n', (sys.argv[1], int(sys.argv[2])))
`
		p := start(t, "python3", "-c", py, group, strconv.Itoa(port))
		if code := p.wait(10 * time.Second); code != 0 {
			t.Fatalf("python: %s", p.stderr)
		}
		wc.waitOutput("← from python", 10*time.Second)
	})

	t.Run("no such interface", func(t *testing.T) {
		_, stderr, code := runWirecat(t, "", 10*time.Second, "listen", fmt.Sprintf("udp://%s:%d", group, freeUDPPort(t)), "--interface", "nosuch0")
		if code == 0 || !strings.Contains(stderr, "nosuch0") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
}

func TestUDPListenMaxConns(t *testing.T) {
	port := freeUDPPort(t)
	wc := start(t, "wirecat", "listen", "-u", "-k", fmt.Sprintf("127.0.0.1:%d", port), "--max-conns", "2", "--frame", "line")
	waitUDP(t, port)
	senders := make([]net.Conn, 3)
	for i := range senders {
		c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		senders[i] = c
	}
	for round := 0; round < 3; round++ { // datagrams may be lost: say it thrice
		for i, c := range senders {
			fmt.Fprintf(c, "sender %d\n", i)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wc.waitOutput("sender 1\n", 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	out := wc.stdout.String()
	if !strings.Contains(out, "sender 0\n") || strings.Contains(out, "sender 2") {
		t.Fatalf("with --max-conns 2 the third sender must go unheard:\n%s", out)
	}
}
