package link

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/logging"
)

// DTLS limits.
const (
	// maxDTLSRecord is the most plaintext wirecat puts in one DTLS record:
	// a record may carry 16384 bytes (RFC 6347), but pion, the DTLS library,
	// reads datagrams of at most 8192 bytes, record header and cipher
	// overhead (up to 77 bytes) included. A longer message goes out as
	// several records, as a UDP message over 65507 bytes goes out as
	// several datagrams.
	maxDTLSRecord = 8000
	// dtlsHandshakeTimeout bounds a DTLS handshake when nothing else does
	// (-w shortens it for a dial): a peer that went away, or a spoofed
	// ClientHello whose sender never answers the cookie, holds nothing
	// for long.
	dtlsHandshakeTimeout = 10 * time.Second
	// maxDTLSPending bounds the handshakes a DTLS listener runs at once. A
	// new ClientHello beyond it pushes out the oldest pending one whose
	// sender has not returned the cookie, so a flood of hellos from
	// spoofed senders (who never see the cookie) cannot lock real clients
	// out: a real client returns the cookie within a round trip and is
	// then kept. One pushed out anyway retransmits its hello a second later.
	maxDTLSPending = 512
	// dtlsNoteEvery rate-limits the notices about unanswered handshakes and
	// refused associations.
	dtlsNoteEvery = 10 * time.Second
)

// DefaultDTLSIdle is how long `listen -k dtls://` keeps an association
// nothing crossed when --idle is not given: long enough for a device that
// reports every minute or so (a new handshake costs it a round trip and its
// battery), short enough that clients which vanished give their places back
// well before maxDTLSAssociations.
const DefaultDTLSIdle = 5 * time.Minute

// ErrIdle is the end of a DTLS association silent for Options.DTLSIdle.
var ErrIdle = errors.New("idle")

// maxDTLSAssociations bounds the associations a listener keeps open, as a
// UDP listener bounds the senders it remembers: UDP has no end, so a client
// that vanishes without close_notify would otherwise hold its association
// until --idle ends it. A variable for the tests.
var maxDTLSAssociations int64 = 16384

// Datagrammer is a conn that carries whole messages rather than a byte
// stream: each Read returns one message, each Write sends one. The pipe
// treats it as it treats a connected UDP socket.
type Datagrammer interface {
	Datagram() bool
}

// DTLSConn is a DTLS association, as Dial and a DTLS listener return it.
type DTLSConn struct {
	*dtls.Conn
	release func() // a listener's count of open associations, once
	once    sync.Once

	idle    time.Duration // a listener's Options.DTLSIdle; 0: never
	last    atomic.Int64  // when a record last crossed, unix nanoseconds
	idled   atomic.Bool   // ended by the idle watch
	mu      sync.Mutex
	watch   *time.Timer // the idle watch, under mu
	stopped bool        // closed: the watch is over, under mu
}

// watchIdle ends c once nothing crossed it for c.idle.
func (c *DTLSConn) watchIdle(o *Options) {
	c.last.Store(time.Now().UnixNano())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watch = time.AfterFunc(c.idle, func() {
		c.mu.Lock()
		if c.stopped {
			c.mu.Unlock()
			return
		}
		if left := c.idle - time.Since(time.Unix(0, c.last.Load())); left > 0 {
			c.watch.Reset(left) // something crossed since: look again then
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.idled.Store(true)
		o.debugf("dtls: %s sent nothing for %v: association ended (--idle)", c.RemoteAddr(), c.idle)
		c.Close()
	})
}

// Read reads one record; an association the idle watch ended says so.
func (c *DTLSConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && c.idled.Load() {
		return n, fmt.Errorf("%w: %s sent nothing for %v (--idle)", ErrIdle, c.RemoteAddr(), c.idle)
	}
	if c.idle > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// Close ends the association (sending close_notify).
func (c *DTLSConn) Close() error {
	if c.release != nil {
		c.once.Do(c.release)
	}
	c.mu.Lock()
	c.stopped = true
	if c.watch != nil {
		c.watch.Stop()
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// Datagram reports true: every DTLS record is one message.
func (c *DTLSConn) Datagram() bool { return true }

// Write sends p as one record, or as several of maxDTLSRecord bytes when it
// is longer than one record carries.
func (c *DTLSConn) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxDTLSRecord)]
		if _, err := c.Conn.Write(chunk); err != nil {
			return n, err
		}
		if c.idle > 0 {
			c.last.Store(time.Now().UnixNano())
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// PSK reads --psk HEX or --psk-file FILE (the key in hex; spaces, colons
// and a 0x prefix allowed). It returns nil when neither is given.
func (t TLSOptions) psk() ([]byte, error) {
	text, flag := t.PSK, "--psk"
	if t.PSKFile != "" {
		if t.PSK != "" {
			return nil, fmt.Errorf("%w: --psk and --psk-file: give one key", ErrBadOption)
		}
		data, err := os.ReadFile(t.PSKFile)
		if err != nil {
			return nil, fmt.Errorf("%w: --psk-file: %w", ErrBadOption, err)
		}
		text, flag = string(data), "--psk-file "+t.PSKFile
	}
	if text == "" {
		if t.PSKIdentity != "" {
			return nil, fmt.Errorf("%w: --psk-identity needs the key: --psk HEX or --psk-file FILE", ErrBadOption)
		}
		return nil, nil
	}
	h := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(text), "0x"), "0X")
	h = strings.NewReplacer(":", "", " ", "", "\n", "", "\r", "", "\t", "").Replace(h)
	key, err := hex.DecodeString(h)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("%w: %s: want the key in hex (e.g. --psk 73656372657421)", ErrBadOption, flag)
	}
	if len(key) > 256 {
		return nil, fmt.Errorf("%w: %s: a key of %d bytes is longer than the 256 DTLS allows", ErrBadOption, flag, len(key))
	}
	return key, nil
}

// usesCerts reports whether t configures certificates (as opposed to a
// pre-shared key).
func (t TLSOptions) usesCerts() bool {
	return t.Insecure || t.CA != "" || t.Cert != "" || t.Key != "" || t.Pin != "" || t.ClientCA != "" || t.SNI != ""
}

// checkPSK refuses a pre-shared key for an address that is not dtls://.
func checkPSK(op string, a Addr, o *Options) error {
	if a.Scheme == "dtls" || o == nil || (o.TLS.PSK == "" && o.TLS.PSKFile == "" && o.TLS.PSKIdentity == "") {
		return nil
	}
	return &OpError{Op: op, Addr: a, Err: fmt.Errorf("%w: --psk, --psk-file and --psk-identity are for dtls:// addresses", ErrBadOption)}
}

// DTLSClientConfig is the configuration Dial uses for dtls://: with --psk
// a pre-shared key sent under --psk-identity, otherwise certificates
// verified as ClientConfig verifies them for TLS.
func DTLSClientConfig(a Addr, o *Options) (*dtls.Config, error) {
	var t TLSOptions
	if o != nil {
		t = o.TLS
	}
	key, err := t.psk()
	if err != nil {
		return nil, err
	}
	if key != nil {
		if t.PSKIdentity == "" {
			return nil, fmt.Errorf("%w: --psk needs --psk-identity ID (the name the server knows the key by)", ErrBadOption)
		}
		if t.usesCerts() {
			return nil, fmt.Errorf("%w: --psk replaces certificates: drop --ca/--pin/--insecure/--cert/--sni", ErrBadOption)
		}
		return &dtls.Config{
			PSK:             func([]byte) ([]byte, error) { return key, nil },
			PSKIdentityHint: []byte(t.PSKIdentity), // pion sends a client's hint as its identity
			CipherSuites:    pskSuites,
		}, nil
	}
	tc, err := ClientConfig(a, o)
	if err != nil {
		return nil, err
	}
	cfg := &dtls.Config{
		RootCAs:               tc.RootCAs,
		ServerName:            tc.ServerName,
		InsecureSkipVerify:    tc.InsecureSkipVerify,
		VerifyPeerCertificate: tc.VerifyPeerCertificate,
		SupportedProtocols:    tc.NextProtos,
	}
	if tc.GetClientCertificate != nil {
		cert, _ := tc.GetClientCertificate(nil)
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg, nil
}

// certRequested wraps a client configuration without a certificate so the
// handshake remembers whether the server asked for one: its refusal then
// says so rather than "handshake failure".
func certRequested(cfg *dtls.Config) *atomic.Bool {
	asked := &atomic.Bool{}
	if cfg.PSK == nil && len(cfg.Certificates) == 0 {
		cfg.GetClientCertificate = func(*dtls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked.Store(true)
			return &tls.Certificate{}, nil // none: the server decides
		}
	}
	return asked
}

// DTLSServerConfig is the configuration a dtls:// listener uses: with --psk
// the pre-shared key (a client naming another --psk-identity is refused),
// otherwise --cert/--key or an ephemeral self-signed certificate, and
// --client-ca as for TLS. The fingerprint is empty with a PSK.
func DTLSServerConfig(a Addr, o *Options) (*dtls.Config, string, error) {
	var t TLSOptions
	if o != nil {
		t = o.TLS
	}
	key, err := t.psk()
	if err != nil {
		return nil, "", err
	}
	if key != nil {
		if t.usesCerts() {
			return nil, "", fmt.Errorf("%w: --psk replaces certificates: drop --cert/--key/--client-ca", ErrBadOption)
		}
		want := t.PSKIdentity
		return &dtls.Config{
			PSK: func(id []byte) ([]byte, error) {
				if want != "" && string(id) != want {
					return nil, &pskIdentityError{got: string(id), want: want}
				}
				return key, nil
			},
			CipherSuites: pskSuites,
		}, "", nil
	}
	tc, err := ServerConfig(a, o)
	if err != nil {
		return nil, "", err
	}
	cfg := &dtls.Config{
		Certificates:       tc.Certificates,
		ClientCAs:          tc.ClientCAs,
		SupportedProtocols: tc.NextProtos,
	}
	if tc.ClientCAs != nil {
		cfg.ClientAuth = dtls.RequireAndVerifyClientCert
	}
	return cfg, Fingerprint(tc.Certificates[0].Certificate[0]), nil
}

// pskSuites are the PSK cipher suites offered and accepted: AES-128-GCM
// first (what openssl picks), then AES-128-CCM-8, which CoAP (RFC 7252)
// makes mandatory, and the rest pion knows.
var pskSuites = []dtls.CipherSuiteID{
	dtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
	dtls.TLS_PSK_WITH_AES_128_CCM_8,
	dtls.TLS_PSK_WITH_AES_128_CCM,
	dtls.TLS_PSK_WITH_AES_256_CCM_8,
	dtls.TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
	dtls.TLS_PSK_WITH_AES_128_CBC_SHA256,
}

type pskIdentityError struct{ got, want string }

func (e *pskIdentityError) Error() string {
	return fmt.Sprintf("unknown psk identity %q (want %q)", e.got, e.want)
}

const dtlsClientTimeout = "timed out (no DTLS server answering there?)"

// dialDTLS connects a UDP socket to a and runs the DTLS handshake over it,
// bounded by ctx or dtlsHandshakeTimeout.
func dialDTLS(ctx context.Context, a Addr, o *Options) (net.Conn, error) {
	cfg, err := DTLSClientConfig(a, o)
	if err != nil {
		return nil, err
	}
	raw, err := dialNet(ctx, a, o)
	if err != nil {
		return nil, err
	}
	logs := &pionLogs{}
	cfg.LoggerFactory = logs
	asked := certRequested(cfg)
	raw.(*net.UDPConn).SetReadBuffer(dtlsReadBuffer) // a burst waits rather than drops
	dc, err := dtls.Client(connectedPacketConn{raw.(*net.UDPConn)}, raw.RemoteAddr(), cfg)
	if err != nil {
		raw.Close()
		return nil, &OpError{Op: "connect", Addr: a, Err: err}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dtlsHandshakeTimeout)
		defer cancel()
	}
	if err := dc.HandshakeContext(ctx); err != nil {
		dc.Close()
		te := classifyDTLS(a.HostPort(), err, false)
		if asked.Load() && strings.Contains(err.Error(), "alert: Alert") {
			te.Kind, te.Detail = ErrNoClientCert, "the server requires a client certificate (use --cert FILE --key FILE)"
		}
		if lg := logs.last.Load(); lg != nil && te.Detail == dtlsClientTimeout {
			switch {
			case lg.keyExchange.Load() && cfg.PSK != nil:
				te.Detail = "timed out after the server's hello: it could not decrypt our keys (a different --psk, or --psk-identity?)"
			case lg.keyExchange.Load():
				te.Detail = "timed out after the server's hello (it never finished the handshake)"
			case lg.answered.Load() && cfg.PSK != nil:
				te.Detail = "timed out: the server answered our hello, then went silent (it may not know our --psk-identity, or want certificates)"
			case lg.answered.Load():
				te.Detail = "timed out: the server answered our hello, then went silent (it may want a --psk instead of certificates)"
			}
		}
		return nil, te
	}
	return &DTLSConn{Conn: dc}, nil
}

// pionLog is pion's logger for one association. It prints nothing (wirecat
// says what went wrong itself, once) but watches for the two signs of a key
// mismatch, which otherwise only times out: DTLS drops records it cannot
// decrypt instead of answering them.
type pionLog struct {
	undecryptable atomic.Bool // a record from the peer failed to decrypt
	keyExchange   atomic.Bool // a client sent its keys (flight 5) and waits
	answered      atomic.Bool // a client heard the server (flight 3 on)
	cookie        atomic.Bool // a server got the cookie back (flight 4 on)
}

func (l *pionLog) Debugf(format string, args ...any) {
	if strings.Contains(format, "decrypt failed") {
		l.undecryptable.Store(true)
	}
}

func (l *pionLog) Tracef(format string, args ...any) {
	if !strings.HasPrefix(format, "[handshake:%s] %s: %s") || len(args) < 2 {
		return
	}
	switch fmt.Sprint(args[1]) {
	case "Flight 3":
		l.answered.Store(true)
	case "Flight 5":
		l.answered.Store(true)
		l.keyExchange.Store(true)
	case "Flight 4", "Flight 4b", "Flight 6":
		// The client's second hello carried the cookie: its address is
		// real (a spoofed sender never sees the cookie).
		l.cookie.Store(true)
	}
}

func (l *pionLog) Trace(string)          {}
func (l *pionLog) Debug(string)          {}
func (l *pionLog) Info(string)           {}
func (l *pionLog) Infof(string, ...any)  {}
func (l *pionLog) Warn(string)           {}
func (l *pionLog) Warnf(string, ...any)  {}
func (l *pionLog) Error(string)          {}
func (l *pionLog) Errorf(string, ...any) {}

// pionLogs makes one pionLog per association and remembers the latest: a
// listener creates associations one at a time, in Accept, so the one made
// last belongs to the association Accept just returned.
type pionLogs struct{ last atomic.Pointer[pionLog] }

func (f *pionLogs) NewLogger(string) logging.LeveledLogger {
	l := &pionLog{}
	f.last.Store(l)
	return l
}

// connectedPacketConn lets pion's DTLS, which writes with WriteTo, run over
// a connected UDP socket: the socket hears only its peer, and an ICMP
// "port unreachable" reaches the handshake as "connection refused".
type connectedPacketConn struct{ *net.UDPConn }

func (c connectedPacketConn) WriteTo(p []byte, _ net.Addr) (int, error) { return c.UDPConn.Write(p) }

func (c connectedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, err := c.UDPConn.Read(p)
	return n, c.UDPConn.RemoteAddr(), err
}

// classifyDTLS names a failed DTLS handshake the way classifyTLS names a
// TLS one: "dtls handshake with 127.0.0.1:5684: ...".
func classifyDTLS(peer string, err error, server bool) *TLSError {
	te := classifyTLS(peer, err, server)
	te.Proto = "dtls"
	var pe *pskIdentityError
	msg := err.Error()
	switch {
	case errors.As(err, &pe):
		te.Detail = pe.Error() + " (the client's --psk-identity)"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		te.Detail = dtlsClientTimeout
		if server {
			te.Detail = "timed out (the client stopped answering, or never was: a spoofed sender?)"
		}
	case strings.Contains(msg, "alert: Alert"): // pion's unexported alertError
		te.Detail = dtlsAlert(msg, server)
	case strings.Contains(msg, "expected and actual verify data does not match"),
		strings.Contains(msg, "decryption"), strings.Contains(msg, "bad_record_mac"):
		te.Detail = "the keys do not match (a different --psk on each side?)"
	case strings.Contains(msg, "connection refused"):
		te.Detail = "connection refused (nothing listening on that UDP port)"
	case strings.Contains(msg, "server required client verification"):
		te.Kind, te.Detail = ErrNoClientCert, "client sent no certificate (--client-ca requires one)"
	case strings.Contains(msg, "do not support any shared cipher suites"):
		te.Detail = "no cipher suite in common (one side uses --psk, the other certificates?)"
	}
	return te
}

// dtlsAlert explains an alert the peer sent.
func dtlsAlert(s string, server bool) string {
	switch {
	case strings.Contains(s, "DecryptError"), strings.Contains(s, "BadRecordMac"):
		return "the peer could not decrypt our handshake: the keys do not match (a different --psk on each side?)"
	case strings.Contains(s, "UnknownPSKIdentity"):
		return "the peer does not know our --psk-identity"
	case strings.Contains(s, "HandshakeFailure"), strings.Contains(s, "InsufficientSecurity"):
		return "the peer refused the handshake (handshake_failure: no cipher suite in common, or a --psk/certificate mismatch)"
	case strings.Contains(s, "BadCertificate"), strings.Contains(s, "UnknownCA"), strings.Contains(s, "CertificateUnknown"):
		if server {
			return "the client refused our certificate (" + s + ")"
		}
		return "the peer refused our certificate (" + s + ")"
	case strings.Contains(s, "CloseNotify"):
		return "the peer closed during the handshake"
	case strings.Contains(s, "InternalError") && !server:
		return "the server refused the handshake (internal_error alert: with a pre-shared key, most often an --psk-identity it does not know)"
	}
	if i := strings.Index(s, "alert: Alert "); i >= 0 {
		s = s[i+len("alert: Alert "):] // "Fatal: DecodeError"
	}
	return "the peer sent dtls alert " + s
}

// listenDTLS opens a DTLS listener: a UDP socket whose new senders become
// connections once their handshake completes.
func listenDTLS(a Addr, o *Options) (net.Listener, error) {
	cfg, fp, err := DTLSServerConfig(a, o)
	if err != nil {
		return nil, err
	}
	laddr, err := net.ResolveUDPAddr(a.Network(), a.HostPort())
	if err != nil {
		return nil, &OpError{Op: "listen", Addr: a, Err: err}
	}
	logs := &pionLogs{}
	cfg.LoggerFactory = logs
	var inner net.Listener
	Gated(func() { inner, err = dtls.ListenWithOptions(a.Network(), laddr, serverOptions(cfg)...) })
	if err != nil {
		return nil, &OpError{Op: "listen", Addr: a, Err: err}
	}
	l := &DTLSListener{
		maxLive:     maxDTLSAssociations,
		Fingerprint: fp,
		inner:       inner,
		logs:        logs,
		o:           o,
		ready:       make(chan net.Conn, 64),
		closed:      make(chan struct{}),
		pending:     map[*dtls.Conn]pendingHS{},
	}
	if fp != "" && (o == nil || o.TLS.Cert == "") {
		o.logf("dtls: ephemeral self-signed certificate %s", fp)
	}
	go l.run()
	return l, nil
}

// serverOptions restates cfg as pion's options, which alone can shape the
// listening socket: a 4 MiB receive buffer (the kernel caps it at
// net.core.rmem_max), so a burst of datagrams waits there instead of being
// dropped while the association decrypts the ones before.
func serverOptions(cfg *dtls.Config) []dtls.ServerOption {
	opts := []dtls.ServerOption{
		dtls.WithLoggerFactory(cfg.LoggerFactory),
		dtls.WithClientAuth(cfg.ClientAuth),
		dtls.WithListenConfig(net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			setReadBuffer(rc, dtlsReadBuffer)
			return nil
		}}),
	}
	if len(cfg.Certificates) > 0 {
		opts = append(opts, dtls.WithCertificates(cfg.Certificates...))
	}
	if cfg.CipherSuites != nil {
		opts = append(opts, dtls.WithCipherSuites(cfg.CipherSuites...))
	}
	if cfg.PSK != nil {
		opts = append(opts, dtls.WithPSK(cfg.PSK))
	}
	if cfg.ClientCAs != nil {
		opts = append(opts, dtls.WithClientCAs(cfg.ClientCAs))
	}
	if len(cfg.SupportedProtocols) > 0 {
		opts = append(opts, dtls.WithSupportedProtocols(cfg.SupportedProtocols...))
	}
	return opts
}

// dtlsReadBuffer is the receive buffer asked for DTLS sockets.
const dtlsReadBuffer = 4 << 20

// DTLSListener is what Listen returns for dtls:// addresses. It runs the
// handshakes itself (at most maxDTLSPending at once, the oldest pushed out
// by a newer one) and Accept yields only associations whose handshake
// completed. A failed handshake is logged in one line through Options.Log;
// the ones that timed out or were pushed out (a flood of spoofed
// ClientHellos) are counted and reported at most once per dtlsNoteEvery.
type DTLSListener struct {
	Fingerprint string // of the server certificate; empty with a PSK
	inner       net.Listener
	logs        *pionLogs
	o           *Options
	ready       chan net.Conn
	closed      chan struct{}
	closeOnce   sync.Once
	acceptErr   error // set before closed is closed by run

	live     atomic.Int64 // associations accepted and not closed
	maxLive  int64        // maxDTLSAssociations when the listener was made
	fullNote time.Time    // when refuseFull last said so

	mu       sync.Mutex
	pending  map[*dtls.Conn]pendingHS
	order    []*dtls.Conn // pending, oldest first (may hold finished ones)
	dropped  int          // unanswered or pushed out since the last notice
	noted    time.Time
	shutdown bool
}

// Addr is the UDP address the listener is bound to.
func (l *DTLSListener) Addr() net.Addr { return l.inner.Addr() }

// Accept returns the next association whose handshake completed.
func (l *DTLSListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.closed:
		if l.acceptErr != nil {
			return nil, l.acceptErr
		}
		return nil, net.ErrClosed
	}
}

// Close stops listening and ends the pending handshakes; associations
// already accepted go on (the UDP socket closes with the last of them).
func (l *DTLSListener) Close() error {
	err := l.inner.Close()
	l.stop(nil)
	return err
}

func (l *DTLSListener) stop(err error) {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.shutdown = true
		for _, p := range l.pending {
			p.cancel()
		}
		l.mu.Unlock()
		l.acceptErr = err
		close(l.closed)
	})
}

// run accepts new senders and handshakes each in its own goroutine.
func (l *DTLSListener) run() {
	for {
		c, err := l.inner.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || isClosedErr(err) {
				err = nil
			}
			l.stop(err)
			return
		}
		dc, ok := c.(*dtls.Conn)
		if !ok {
			c.Close()
			continue
		}
		lg := l.logs.last.Swap(nil)
		if lg == nil {
			lg = &pionLog{}
		}
		ctx, cancel := context.WithTimeout(context.Background(), dtlsHandshakeTimeout)
		if !l.track(dc, cancel, lg) {
			cancel()
			dc.Close()
			continue
		}
		go l.handshake(ctx, dc, lg)
	}
}

// isClosedErr matches pion's own "listener closed" errors.
func isClosedErr(err error) bool {
	s := err.Error()
	return strings.Contains(s, "closed")
}

// pendingHS is a handshake in progress.
type pendingHS struct {
	cancel context.CancelFunc
	log    *pionLog
}

// track records a pending handshake. When maxDTLSPending are pending
// already it pushes out the oldest one whose sender has not returned the
// cookie (a spoofed sender's, most likely), or the oldest of all when every
// sender has. It reports false once closed.
func (l *DTLSListener) track(dc *dtls.Conn, cancel context.CancelFunc, lg *pionLog) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shutdown {
		return false
	}
	if len(l.pending) >= maxDTLSPending {
		victim := -1
		for i, c := range l.order {
			p, ok := l.pending[c]
			if !ok {
				continue
			}
			if victim < 0 {
				victim = i // the oldest of all, unless an unverified one comes
			}
			if !p.log.cookie.Load() {
				victim = i
				break
			}
		}
		if victim >= 0 {
			old := l.order[victim]
			l.pending[old].cancel()
			delete(l.pending, old)
			l.order = append(l.order[:victim], l.order[victim+1:]...)
			l.dropped++
		}
	}
	for len(l.order) > 0 {
		if _, ok := l.pending[l.order[0]]; ok {
			break
		}
		l.order = l.order[1:] // finished
	}
	if len(l.order) > 4*maxDTLSPending {
		// Compact: drop the finished handshakes the slice still names.
		live := l.order[:0]
		for _, c := range l.order {
			if _, ok := l.pending[c]; ok {
				live = append(live, c)
			}
		}
		l.order = live
	}
	l.pending[dc] = pendingHS{cancel: cancel, log: lg}
	l.order = append(l.order, dc)
	return true
}

// untrack removes a finished handshake; it reports whether it was still
// tracked (false: pushed out, or the listener closed).
func (l *DTLSListener) untrack(dc *dtls.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.pending[dc]
	if ok {
		delete(l.pending, dc)
		p.cancel()
	}
	return ok && !l.shutdown
}

func (l *DTLSListener) handshake(ctx context.Context, dc *dtls.Conn, lg *pionLog) {
	err := dc.HandshakeContext(ctx)
	tracked := l.untrack(dc)
	if err == nil && tracked {
		if n := l.live.Add(1); n > l.maxLive {
			l.live.Add(-1)
			l.refuseFull(dc.RemoteAddr())
		} else {
			c := &DTLSConn{Conn: dc, release: func() { l.live.Add(-1) }}
			if l.o != nil && l.o.DTLSIdle > 0 {
				c.idle = l.o.DTLSIdle
				c.watchIdle(l.o)
			}
			select {
			case l.ready <- c:
				return
			case <-l.closed:
				c.Close()
				return
			}
		}
	}
	dc.Close()
	if err == nil || !tracked {
		l.note() // pushed out (counted when it was), or closed
		return
	}
	peer := dc.RemoteAddr().String()
	if errors.Is(err, context.DeadlineExceeded) && lg.undecryptable.Load() {
		l.o.logf("refused %s: dtls handshake with %s: could not decrypt the client's keys (a different --psk?)", peer, peer)
		return
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		l.mu.Lock()
		l.dropped++
		l.mu.Unlock()
		l.note()
		return
	}
	l.o.logf("refused %s: %v", peer, classifyDTLS(peer, err, true))
	l.note()
}

// refuseFull reports, at most once per dtlsNoteEvery, a client refused
// because maxDTLSAssociations are open.
func (l *DTLSListener) refuseFull(peer net.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.fullNote) < dtlsNoteEvery {
		return
	}
	l.fullNote = time.Now()
	l.o.logf("refused %s: %d DTLS associations open, the most a listener keeps (--idle ends silent ones)", peer, l.maxLive)
}

// note reports, at most once per dtlsNoteEvery, the handshakes that
// timed out or were pushed out since the last notice.
func (l *DTLSListener) note() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shutdown || l.dropped == 0 || time.Since(l.noted) < dtlsNoteEvery {
		return
	}
	l.o.logf("dtls: %d handshakes never completed (clients that stopped answering, or ClientHellos from spoofed senders); still serving", l.dropped)
	l.dropped = 0
	l.noted = time.Now()
}
