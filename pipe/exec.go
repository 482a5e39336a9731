package pipe

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
)

// ServeExec runs command with its stdin and stdout wired to c, like ncat's
// -e. When the peer half-closes, the command's stdin ends but its output
// still goes back: a reply to a request sent just before the FIN is not lost.
func ServeExec(ctx context.Context, c net.Conn, m Meta, cfg *Config, command string) error {
	defer c.Close()
	cfg.Sink.Emit(m.event(event.Open, 0, nil, nil))
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = append(os.Environ(), ExecEnv(c, m)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		cfg.Sink.Emit(m.event(event.Close, m.Role, nil, err))
		return err
	}
	peer := m.Role.Other()
	go func() {
		copyEmitting(stdin, c, func(p []byte) { cfg.Sink.Emit(m.event(event.Data, peer, p, nil)); cfg.flush() })
		stdin.Close()
	}()
	_, werr := copyEmitting(c, stdout, func(p []byte) { cfg.Sink.Emit(m.event(event.Data, m.Role, p, nil)); cfg.flush() })
	link.CloseWrite(c)
	err = cmd.Wait()
	if werr != nil && !isGone(werr) {
		err = werr
	}
	if err != nil {
		cfg.Log.Notef("conn %d: exec %q: %v", m.ID, command, err)
	}
	c.Close() // before the event: a WebSocket's close frame is then known
	cfg.Sink.Emit(m.closeEvent(c, m.Role, err))
	cfg.flush()
	return err
}

// ExecEnv describes the connection to the command, as ncat does: each end's
// host (or socket path) and port in separate variables, so both ends read
// the same way.
//
//	WIRECAT_CONN_ID      the connection id (as in -o json and recordings)
//	WIRECAT_PROTO        tcp, udp, tls, unix...
//	WIRECAT_REMOTE_ADDR  the peer's host (IPv6 without brackets), or socket path
//	WIRECAT_REMOTE_PORT  the peer's port ("" for Unix sockets)
//	WIRECAT_LOCAL_ADDR   wirecat's own host, or socket path
//	WIRECAT_LOCAL_PORT   wirecat's own port ("" for Unix sockets)
func ExecEnv(c net.Conn, m Meta) []string {
	rhost, rport := splitAddr(m.Remote)
	lhost, lport := splitAddr(m.Local)
	return []string{
		"WIRECAT_CONN_ID=" + strconv.FormatUint(m.ID, 10),
		"WIRECAT_PROTO=" + m.Transport,
		"WIRECAT_REMOTE_ADDR=" + rhost, "WIRECAT_REMOTE_PORT=" + rport,
		"WIRECAT_LOCAL_ADDR=" + lhost, "WIRECAT_LOCAL_PORT=" + lport,
	}
}

// splitAddr cuts host:port; anything else (a socket path) is all host.
func splitAddr(a string) (host, port string) {
	if h, p, err := net.SplitHostPort(a); err == nil {
		return h, p
	}
	return a, ""
}

// copyEmitting copies src to dst, reporting each chunk as it goes.
func copyEmitting(dst io.Writer, src io.Reader, report func([]byte)) (int64, error) {
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			report(buf[:n]) // before the write: a reply is never recorded ahead of it
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
