package link

// Serial ports and pseudo-terminals on Linux.
//
// The port is opened with os.OpenFile, not through go.bug.st/serial's Port:
// a tty descriptor in Go's poller gives a net.Conn its deadlines (pipe uses
// them to linger, Lua to bound writes) and lets Close end a blocked Read at
// once, which a signal needs; Port has neither. termios is set here with
// TCSETS2, so any rate the driver accepts works, not only the B* table.
// go.bug.st/serial's enumerator lists the ports (`wirecat ports`).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

const (
	// hupPoll is how often a pty with nobody on its slave side is checked
	// for an opener: quick enough that a program opening it and writing at
	// once loses nothing (the kernel buffers), cheap for 100 ptys.
	hupPoll = 20 * time.Millisecond
	// reappearPoll is how often a vanished serial device is looked for
	// again (USB re-enumeration takes a second or so).
	reappearPoll = 250 * time.Millisecond
)

// ttyConn is a serial port or a pty master as a net.Conn.
type ttyConn struct {
	f      *os.File
	addr   Addr
	local  ttyAddr
	remote ttyAddr
	serial bool         // a vanished device is an error; a pty's closed slave is EOF
	done   func() error // what Close does after marking the conn closed
	once   sync.Once
	mu     sync.Mutex
	closed bool
	left   atomic.Bool // a pty's opener closed it (read EOF)
}

func (c *ttyConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Read and Write refuse a closed conn before touching the descriptor: a
// listener's pty outlives its sessions, and a late write of an old session
// must not reach the next opener.
func (c *ttyConn) Read(b []byte) (int, error) {
	if c.isClosed() {
		return 0, net.ErrClosed
	}
	n, err := c.f.Read(b)
	if err != nil {
		err = c.mapErr(err, n == 0)
	}
	return n, err
}

func (c *ttyConn) Write(b []byte) (int, error) {
	if c.isClosed() {
		return 0, net.ErrClosed
	}
	n, err := c.f.Write(b)
	if err != nil {
		err = c.mapErr(err, false)
		if errors.Is(err, io.EOF) {
			err = syscall.EPIPE // nobody on the pty's other side
		}
	}
	return n, err
}

// mapErr turns the kernel's ways of saying "gone" into what a net.Conn says:
// a pty whose slave side was closed reads EIO, which is its peer's EOF; a
// serial device unplugged reads EIO or a hangup (EOF) and is ErrDeviceGone.
func (c *ttyConn) mapErr(err error, read bool) error {
	if c.isClosed() {
		return net.ErrClosed
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed) {
		if errors.Is(err, os.ErrClosed) {
			return net.ErrClosed
		}
		return err
	}
	gone := errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV) || read && errors.Is(err, io.EOF)
	switch {
	case gone && c.serial:
		if errors.Is(err, io.EOF) {
			err = errors.New("hung up")
		}
		return &DeviceError{Addr: c.addr, Err: err}
	case gone:
		c.left.Store(true)
		return io.EOF
	}
	return err
}

func (c *ttyConn) Close() error {
	var err error
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		err = c.done()
	})
	return err
}

func (c *ttyConn) LocalAddr() net.Addr                { return c.local }
func (c *ttyConn) RemoteAddr() net.Addr               { return c.remote }
func (c *ttyConn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *ttyConn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *ttyConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

// control runs fn on f's descriptor without taking it out of the poller
// (f.Fd() would make it blocking, and deadlines would stop working).
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// openSerial opens and sets up the port a names, exclusively.
func openSerial(a Addr, o *Options) (*ttyConn, error) {
	cfg := a.Serial(o.baud())
	fail := func(err error, hint string) (*ttyConn, error) {
		return nil, &OpError{Op: "open", Addr: a, Err: err, Hint: hint}
	}
	// O_NONBLOCK: a port without carrier (no CLOCAL yet) would block the
	// open itself; the descriptor stays non-blocking for the poller.
	f, err := os.OpenFile(a.Path, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fail(syscall.ENOENT, "no such device; `wirecat ports` lists the ports present")
		case errors.Is(err, syscall.EBUSY):
			return fail(syscall.EBUSY, busyHint(a.Path))
		case errors.Is(err, fs.ErrPermission):
			return fail(syscall.EACCES, "join the group that owns it, e.g. sudo usermod -aG dialout $USER, then log in again")
		}
		return fail(unwrapPath(err), "")
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	if err := control(f, func(fd int) error {
		if _, err := unix.IoctlGetTermios(fd, unix.TCGETS2); err != nil {
			return err
		}
		// Another wirecat, pyserial (exclusive=True) or picocom holds a
		// flock; TIOCEXCL then keeps later opens out (root excepted).
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			return syscall.EBUSY
		}
		return unix.IoctlSetInt(fd, unix.TIOCEXCL, 0)
	}); err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return fail(err, busyHint(a.Path))
		}
		if errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.EINVAL) {
			return fail(errors.New("not a serial port (no terminal settings)"), "")
		}
		return fail(err, "")
	}
	var kept string
	if err := control(f, func(fd int) error { var err error; kept, err = setSerial(fd, cfg); return err }); err != nil {
		var re *rateError
		if errors.As(err, &re) {
			return nil, &OpError{Op: "open", Addr: a, Err: fmt.Errorf("%w: %v", ErrBadOption, err)}
		}
		return fail(err, "")
	}
	if kept != "" {
		o.logf("%s: the driver kept %s (a pty is always 8 bits, no parity)", a, kept)
	}
	ok = true
	name := ttyAddr{"serial", a.Path}
	return &ttyConn{f: f, addr: a, local: name, remote: name, serial: true, done: f.Close}, nil
}

// unwrapOp is an open error's cause and hint without the address, which
// the line saying it names already.
func unwrapOp(err error) string {
	var oe *OpError
	if errors.As(err, &oe) {
		msg := Cause(oe.Err)
		if oe.Hint != "" {
			msg += "; " + oe.Hint
		}
		return msg
	}
	return Cause(err)
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// rateError is a baud rate the driver did not take.
type rateError struct{ want, got int }

func (e *rateError) Error() string {
	if e.got == 0 {
		return fmt.Sprintf("the port cannot do %d baud (the driver refused it)", e.want)
	}
	return fmt.Sprintf("the port cannot do %d baud (the driver set %d)", e.want, e.got)
}

// checkRate accepts the rate a driver set for want: drivers round to what
// their clock divides to, and more than 3% off is not the rate asked for (a
// UART tolerates about 2-3%).
func checkRate(want, got int) error {
	if d := got - want; d*100 > want*3 || -d*100 > want*3 {
		return &rateError{want: want, got: got}
	}
	return nil
}

// setSerial puts fd in raw mode with cfg's framing, and checks the driver
// took the rate. It returns the data bits and parity the driver kept when
// they differ from cfg's (ptys force 8 bits and no parity), "" otherwise.
func setSerial(fd int, cfg SerialConfig) (string, error) {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS2)
	if err != nil {
		return "", err
	}
	makeRaw(t)
	t.Cflag &^= unix.CBAUD | unix.CSIZE | unix.PARENB | unix.PARODD | unix.CSTOPB | unix.CRTSCTS
	t.Cflag |= unix.BOTHER | unix.CREAD | unix.CLOCAL
	t.Ispeed, t.Ospeed = uint32(cfg.Baud), uint32(cfg.Baud)
	t.Cflag |= map[int]uint32{5: unix.CS5, 6: unix.CS6, 7: unix.CS7, 8: unix.CS8}[cfg.Bits]
	switch cfg.Parity {
	case "even":
		t.Cflag |= unix.PARENB
	case "odd":
		t.Cflag |= unix.PARENB | unix.PARODD
	}
	if cfg.Stop == 2 {
		t.Cflag |= unix.CSTOPB
	}
	switch cfg.Flow {
	case "rtscts":
		t.Cflag |= unix.CRTSCTS
	case "xonxoff":
		t.Iflag |= unix.IXON | unix.IXOFF
	}
	if err := unix.IoctlSetTermios(fd, unix.TCSETS2, t); err != nil {
		if errors.Is(err, syscall.EINVAL) {
			return "", &rateError{want: cfg.Baud}
		}
		return "", err
	}
	got, err := unix.IoctlGetTermios(fd, unix.TCGETS2)
	if err != nil {
		return "", err
	}
	if err := checkRate(cfg.Baud, int(got.Ospeed)); err != nil {
		return "", err
	}
	if frame := (t.Cflag ^ got.Cflag) & (unix.CSIZE | unix.PARENB | unix.PARODD); frame != 0 {
		bits := map[uint32]string{unix.CS5: "5", unix.CS6: "6", unix.CS7: "7", unix.CS8: "8"}[got.Cflag&unix.CSIZE]
		parity := "no parity"
		if got.Cflag&unix.PARENB != 0 {
			parity = map[bool]string{true: "odd parity", false: "even parity"}[got.Cflag&unix.PARODD != 0]
		}
		return bits + " data bits and " + parity, nil
	}
	return "", nil
}

// makeRaw is cfmakeraw(3): bytes in, bytes out, no echo, no signals.
func makeRaw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
}

// busyHint names the processes holding path: the one with the lock when
// /proc/locks says, else those with it open, where /proc tells.
func busyHint(path string) string {
	holders := lockersOf(path)
	if len(holders) == 0 {
		holders = holdersOf(path, 3)
	}
	if len(holders) == 0 {
		return "another program has it open"
	}
	return "in use by " + strings.Join(holders, ", ")
}

// lockersOf lists the processes holding a flock on path (/proc/locks:
// `1: FLOCK  ADVISORY  WRITE 4242 00:05:3 0 EOF`, the file as
// major:minor:inode of its filesystem).
func lockersOf(path string) []string {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return nil
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)), st.Ino)
	b, _ := os.ReadFile("/proc/locks")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "FLOCK" && f[5] == want && f[4] != strconv.Itoa(os.Getpid()) {
			comm, _ := os.ReadFile("/proc/" + f[4] + "/comm")
			out = append(out, fmt.Sprintf("pid %s (%s)", f[4], strings.TrimSpace(string(comm))))
		}
	}
	return out
}

// holdersOf lists up to max other processes with path open, as `pid N (comm)`.
func holdersOf(path string, max int) []string {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		target = path
	}
	procs, _ := os.ReadDir("/proc")
	var out []string
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		pid := p.Name()
		if pid == self || strings.Trim(pid, "0123456789") != "" {
			continue
		}
		fds, _ := os.ReadDir("/proc/" + pid + "/fd")
		for _, fd := range fds {
			if l, err := os.Readlink("/proc/" + pid + "/fd/" + fd.Name()); err == nil && l == target {
				comm, _ := os.ReadFile("/proc/" + pid + "/comm")
				out = append(out, fmt.Sprintf("pid %s (%s)", pid, strings.TrimSpace(string(comm))))
				break
			}
		}
		if len(out) == max {
			break
		}
	}
	return out
}

// ptyHost is a pseudo-terminal wirecat created: it holds the master side;
// the program under test opens the slave side (or the symlink to it).
type ptyHost struct {
	a      Addr
	master *os.File
	slave  string // /dev/pts/N
	link   string // the symlink made for a.Path, "" if none
	once   sync.Once
}

// newPTY creates a pty in raw mode and, when a names a path, symlinks it.
func newPTY(a Addr, o *Options) (*ptyHost, error) {
	fail := func(err error, hint string) (*ptyHost, error) {
		return nil, &OpError{Op: "open", Addr: a, Err: err, Hint: hint}
	}
	m, t, err := pty.Open()
	if err != nil {
		return fail(unwrapPath(err), "")
	}
	slave := t.Name()
	// Raw, as `socat pty,raw,echo=0`: the settings live on the slave side
	// and last while the master is open, so a program that sets nothing
	// gets bytes as they are. Then the slave is closed: its next opener is
	// the peer.
	err = control(t, func(fd int) error {
		tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return err
		}
		makeRaw(tio)
		return unix.IoctlSetTermios(fd, unix.TCSETS, tio)
	})
	t.Close()
	if err != nil {
		m.Close()
		return fail(err, "")
	}
	// pty.Open took the master out of the poller (it called Fd); a
	// non-blocking duplicate goes back in, for deadlines.
	var fd int
	err = control(m, func(mfd int) error {
		var err error
		fd, err = unix.FcntlInt(uintptr(mfd), unix.F_DUPFD_CLOEXEC, 0)
		return err
	})
	m.Close()
	if err != nil {
		return fail(err, "")
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fail(err, "")
	}
	h := &ptyHost{a: a, master: os.NewFile(uintptr(fd), "/dev/ptmx"), slave: slave}
	if a.Path != "" {
		if err := placeLink(a.Path, slave); err != nil {
			h.master.Close()
			return fail(err, "")
		}
		h.link = a.Path
		o.logf("pty %s at %s", slave, a.Path)
	} else {
		o.logf("pty %s", slave)
	}
	return h, nil
}

// placeLink symlinks path to slave, replacing an old symlink (a previous
// run's, or a dead one's) but never a file or directory.
func placeLink(path, slave string) error {
	fi, err := os.Lstat(path)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink == 0:
		return fmt.Errorf("%s exists and is not a symlink (not replaced)", path)
	case err == nil:
		if err := os.Remove(path); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return unwrapPath(err)
	}
	if err := os.Symlink(slave, path); err != nil {
		return fmt.Errorf("symlink %s: %w", path, unwrapPath(err))
	}
	return nil
}

// waitGone returns once the slave side's opener has closed it, or ctx
// ends, and drops what it wrote after its session ended: a session wirecat
// closed (a relay whose target refused) must not start again at once with
// the same opener, nor hand its leftovers to the next one.
func (h *ptyHost) waitGone(ctx context.Context) error {
	t := time.NewTicker(hupPoll)
	defer t.Stop()
	for {
		var hup bool
		err := control(h.master, func(fd int) error {
			p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if _, err := unix.Poll(p, 0); err != nil && !errors.Is(err, syscall.EINTR) {
				return err
			}
			if hup = p[0].Revents&unix.POLLHUP != 0; hup {
				return unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH)
			}
			return nil
		})
		if err != nil || hup {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// hungUp reports that nobody has the slave side open and nobody left
// bytes behind: `echo hi > /tmp/ttyV0` opens, writes and closes between two
// looks, and its bytes still make a session.
func (h *ptyHost) hungUp() (bool, error) {
	var hup bool
	err := control(h.master, func(fd int) error {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(p, 0); err != nil && !errors.Is(err, syscall.EINTR) {
			return err
		}
		hup = p[0].Revents&unix.POLLHUP != 0 && p[0].Revents&unix.POLLIN == 0
		return nil
	})
	return hup, err
}

// waitOpen returns once a program has the slave side open, or ctx ends.
func (h *ptyHost) waitOpen(ctx context.Context) error {
	t := time.NewTicker(hupPoll)
	defer t.Stop()
	for {
		hup, err := h.hungUp()
		if err != nil {
			return err
		}
		if !hup {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// conn is the session with the slave's current opener; closing it closes
// the pty only when owned.
func (h *ptyHost) conn(owned bool) *ttyConn {
	c := &ttyConn{f: h.master, addr: h.a, local: ttyAddr{"pty", h.slave}, remote: ttyAddr{"pty", h.slave}}
	if owned {
		c.done = h.Close
	} else {
		// Wake a blocked Read or Write; the listener keeps the master for
		// the next opener.
		c.done = func() error { return h.master.SetDeadline(time.Unix(1, 0)) }
	}
	return c
}

// Close closes the master (the slave's opener reads EOF) and removes the
// symlink if it still points at this pty.
func (h *ptyHost) Close() error {
	var err error
	h.once.Do(func() {
		err = h.master.Close()
		if h.link != "" {
			if l, lerr := os.Readlink(h.link); lerr == nil && l == h.slave {
				os.Remove(h.link)
			}
		}
	})
	return err
}

// dialTTY opens a serial port, or creates a pty and waits for its opener.
func dialTTY(ctx context.Context, a Addr, o *Options) (net.Conn, error) {
	if a.Scheme == "serial" {
		c, err := openSerial(a, o)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	h, err := newPTY(a, o)
	if err != nil {
		return nil, err
	}
	if err := h.waitOpen(ctx); err != nil {
		h.Close()
		return nil, &OpError{Op: "open", Addr: a, Err: err, Hint: "nobody opened " + h.slave}
	}
	return h.conn(true), nil
}

// ttyListener serves a serial port or a pty as a listener with one peer at
// a time: Accept returns the port (or the pty's opener), and the next
// Accept waits until that session is closed, then for the device to be
// there again (a serial port re-enumerated, a pty reopened).
type ttyListener struct {
	a       Addr
	o       *Options
	ctx     context.Context
	cancel  context.CancelFunc
	host    *ptyHost // pty
	first   *ttyConn // serial: the port opened by Listen, not yet accepted
	mu      sync.Mutex
	current chan struct{} // closed when the accepted session closes
	last    *ttyConn      // the session accepted last
	live    bool          // a pty session is open: Close leaves the master to it
	seen    bool          // serial: the port was open once (it comes back, not appears)
	closed  bool
}

func listenTTY(a Addr, o *Options) (net.Listener, error) {
	l := &ttyListener{a: a, o: o}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	if a.Scheme == "pty" {
		h, err := newPTY(a, o)
		if err != nil {
			return nil, err
		}
		l.host = h
		return l, nil
	}
	c, err := openSerial(a, o)
	if err != nil {
		if o == nil || !o.WaitDevice || errors.Is(err, ErrBadOption) {
			return nil, err
		}
		// Accept waits for it (a board not plugged in yet).
		return l, nil
	}
	l.first, l.seen = c, true
	return l, nil
}

func (l *ttyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	prev, first, last := l.current, l.first, l.last
	l.first = nil
	l.mu.Unlock()
	if prev != nil {
		select {
		case <-prev:
		case <-l.ctx.Done():
			return nil, net.ErrClosed
		}
	}
	if last != nil && l.host != nil && !last.left.Load() {
		// wirecat ended the last session, not its opener: wait for the
		// opener to go before taking the next.
		if err := l.host.waitGone(l.ctx); err != nil {
			if l.ctx.Err() != nil {
				return nil, net.ErrClosed
			}
			return nil, &OpError{Op: "listen", Addr: l.a, Err: err}
		}
	}
	var c *ttyConn
	switch {
	case first != nil:
		c = first
	case l.host != nil:
		if err := l.host.waitOpen(l.ctx); err != nil {
			if l.ctx.Err() != nil {
				return nil, net.ErrClosed
			}
			return nil, &OpError{Op: "listen", Addr: l.a, Err: err}
		}
		l.host.master.SetDeadline(time.Time{})
		c = l.host.conn(false)
		wake := c.done
		c.done = func() error {
			// A listener closed during the session (a one-shot one is
			// closed as soon as it has its peer) hands the pty to the
			// session, which closes it last.
			l.mu.Lock()
			l.live = false
			closed := l.closed
			l.mu.Unlock()
			if closed {
				return l.host.Close()
			}
			return wake()
		}
		l.mu.Lock()
		l.live = true
		l.mu.Unlock()
	default:
		var err error
		if c, err = l.reopen(); err != nil {
			return nil, err
		}
	}
	done := make(chan struct{})
	inner := c.done
	c.done = func() error { defer close(done); return inner() }
	l.mu.Lock()
	l.current, l.last = done, c
	l.mu.Unlock()
	return c, nil
}

// reopen waits for the serial device to be there and openable again.
func (l *ttyListener) reopen() (*ttyConn, error) {
	t := time.NewTicker(reappearPoll)
	defer t.Stop()
	said := false
	l.mu.Lock()
	seen := l.seen
	l.seen = true
	l.mu.Unlock()
	for {
		c, err := openSerial(l.a, l.o)
		if err == nil {
			if said {
				l.o.logf("%s is %s", l.a, map[bool]string{true: "back", false: "there"}[seen])
			}
			return c, nil
		}
		if errors.Is(err, ErrBadOption) {
			return nil, err
		}
		if !said {
			what := "appear"
			if seen {
				what = "come back"
			}
			l.o.logf("waiting for %s to %s (%s)", l.a, what, unwrapOp(err))
			said = true
		}
		select {
		case <-l.ctx.Done():
			return nil, net.ErrClosed
		case <-t.C:
		}
	}
}

func (l *ttyListener) Close() error {
	l.cancel()
	l.mu.Lock()
	first, live := l.first, l.live
	l.first, l.closed = nil, true
	l.mu.Unlock()
	if first != nil {
		first.Close()
	}
	if l.host != nil && !live {
		return l.host.Close()
	}
	return nil
}

func (l *ttyListener) Addr() net.Addr {
	if l.host != nil {
		return ttyAddr{"pty", l.host.slave}
	}
	return ttyAddr{"serial", l.a.Path}
}
