package link

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// Sentinels for errors.Is. A *TLSError matches ErrTLS and at most one of the
// more specific ones.
var (
	ErrTLS              = errors.New("tls failure")
	ErrUnknownAuthority = errors.New("certificate signed by unknown authority")
	ErrNameMismatch     = errors.New("certificate name mismatch")
	ErrPinMismatch      = errors.New("certificate pin mismatch")
	ErrCertExpired      = errors.New("certificate expired or not yet valid")
	ErrNoClientCert     = errors.New("client certificate missing")
	// ErrBadOption is matched by errors in the TLS options themselves
	// (a malformed pin, an unreadable --ca, --key without --cert): usage errors.
	ErrBadOption = errors.New("bad option")
)

// OpError is a failed connect or listen: `connect tcp://127.0.0.1:9: connection refused`.
type OpError struct {
	Op   string // connect, listen
	Addr Addr
	Err  error
	Hint string // optional advice appended in parentheses
}

func (e *OpError) Error() string {
	msg := e.Op + " " + e.Addr.String() + ": " + Cause(e.Err)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *OpError) Unwrap() error { return e.Err }

// TLSError is a failed handshake, saying which check failed:
// `tls handshake with 127.0.0.1:8443: certificate signed by unknown authority (use ...)`.
type TLSError struct {
	Proto  string // "tls" when empty, or "dtls"
	Peer   string // host:port of the other side
	Kind   error  // ErrUnknownAuthority, ErrNameMismatch, ... or nil
	Detail string // the one-line explanation
	Err    error  // what crypto/tls returned
}

func (e *TLSError) Error() string {
	proto := e.Proto
	if proto == "" {
		proto = "tls"
	}
	return proto + " handshake with " + e.Peer + ": " + e.Detail
}
func (e *TLSError) Unwrap() error { return e.Err }

// Is matches ErrTLS and the error's Kind.
func (e *TLSError) Is(target error) bool {
	return target == ErrTLS || (e.Kind != nil && target == e.Kind)
}

// PinError is returned when the server's certificate is not the pinned one.
type PinError struct {
	Got, Want string // sha256:hex
}

func (e *PinError) Error() string {
	return fmt.Sprintf("pin mismatch: server certificate is %s, want %s", e.Got, e.Want)
}

// Cause is the short, lower-case reason behind a network error, without the
// operation and address wrappers: "connection refused", "timed out",
// "cannot resolve \"nohost\": no such host". A *TLSError or *OpError gives its
// full message.
func Cause(err error) string {
	if err == nil {
		return ""
	}
	var re *RetryError
	var xe *ProxyError
	if errors.As(err, &re) {
		return re.Error()
	}
	if errors.As(err, &xe) {
		return xe.Error()
	}
	var te *TLSError
	var oe *OpError
	var pe *PinError
	var ae *AddrError
	var dns *net.DNSError
	var errno syscall.Errno
	var addrErr *net.AddrError
	var de *DeviceError
	switch {
	case errors.As(err, &de):
		return de.Error()
	case errors.As(err, &te):
		return te.Error()
	case errors.As(err, &oe):
		return oe.Error()
	case errors.As(err, &pe):
		return pe.Error()
	case errors.As(err, &ae):
		return ae.Error()
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return fmt.Sprintf("cannot resolve %q: no such host", dns.Name)
		}
		if dns.IsTimeout {
			return fmt.Sprintf("cannot resolve %q: dns timed out", dns.Name)
		}
		return fmt.Sprintf("cannot resolve %q: %s", dns.Name, dns.Err)
	case errors.As(err, &errno):
		return errno.Error()
	case errors.As(err, &addrErr):
		return addrErr.Err
	}
	if msg, ok := remoteAlert(err); ok {
		return msg
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// remoteAlert explains a TLS alert the peer sent; with TLS 1.3 a client learns
// that its certificate was refused only on its first read, so Cause must know it.
func remoteAlert(err error) (string, bool) {
	s := err.Error()
	i := strings.Index(s, "remote error: tls: ")
	if i < 0 {
		return "", false
	}
	alert := s[i+len("remote error: tls: "):]
	switch alert {
	case "certificate required":
		return "the server requires a client certificate (use --cert FILE --key FILE)", true
	case "bad certificate", "unknown certificate authority":
		return "the peer refused our certificate (" + alert + ")", true
	case "no application protocol":
		return "the peer supports none of the --alpn protocols", true
	case "protocol version not supported":
		return "the peer speaks no TLS version we accept", true
	}
	return "the peer sent tls alert: " + alert, true
}

// classifyTLS turns a handshake error into a *TLSError. server is true when
// wirecat is the TLS server, so the certificate in question is the client's.
func classifyTLS(peer string, err error, server bool) *TLSError {
	te := &TLSError{Peer: peer, Err: err}
	whose := ""
	if server {
		whose = "client "
	}
	var pin *PinError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &pin):
		te.Kind, te.Detail = ErrPinMismatch, pin.Error()
	case errors.As(err, &unknown):
		te.Kind = ErrUnknownAuthority
		te.Detail = whose + "certificate signed by unknown authority (use --ca FILE, --pin sha256:..., or --insecure)"
		if server {
			te.Detail = "client certificate signed by unknown authority (not issued by --client-ca)"
		}
	case errors.As(err, &host):
		te.Kind = ErrNameMismatch
		te.Detail = strings.TrimPrefix(host.Error(), "x509: ") + " (name mismatch; use --sni)"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		te.Kind = ErrCertExpired
		te.Detail = whose + strings.TrimPrefix(invalid.Error(), "x509: ") + " (check the clock, or use --pin / --insecure)"
	case server && strings.Contains(err.Error(), "didn't provide a certificate"):
		te.Kind, te.Detail = ErrNoClientCert, "client sent no certificate (--client-ca requires one)"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		te.Detail = "timed out"
	default:
		if msg, ok := remoteAlert(err); ok {
			te.Detail = msg
			if strings.HasSuffix(msg, "(use --cert FILE --key FILE)") {
				te.Kind = ErrNoClientCert
			}
			break
		}
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) {
			te.Detail = "the peer does not speak tls (got a non-tls record)"
			break
		}
		te.Detail = strings.TrimPrefix(Cause(err), "tls: ")
	}
	return te
}
