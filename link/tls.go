package link

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// TLSOptions are the --insecure, --ca, --cert, --key, --sni, --pin,
// --client-ca and --alpn flags. Cert and Key are the client certificate when
// dialing and the server certificate when listening. A Cert file holding the
// key too may be given without Key.
type TLSOptions struct {
	Insecure bool
	CA       string
	Cert     string
	Key      string
	SNI      string
	Pin      string // sha256:HEX, colons and case optional
	ClientCA string
	ALPN     []string
	// PSK (hex) or PSKFile (a file holding it in hex) is a DTLS pre-shared
	// key, sent (client) or expected (server, when set) under PSKIdentity.
	PSK         string
	PSKFile     string
	PSKIdentity string
}

// Fingerprint is the SHA-256 of a DER certificate as `sha256:<lowercase hex>`,
// the form --pin accepts.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParsePin reads `sha256:HEX` (the prefix, colons and case are optional) and
// returns the 32-byte digest.
func ParsePin(s string) ([]byte, error) {
	h := s
	if len(h) >= 7 && strings.EqualFold(h[:7], "sha256:") {
		h = h[7:]
	}
	h = strings.ReplaceAll(h, ":", "")
	sum, err := hex.DecodeString(h)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("%w: --pin %q: want sha256: followed by 64 hex digits (colons allowed)", ErrBadOption, s)
	}
	return sum, nil
}

// ClientConfig is the tls.Config Dial uses for a: it verifies against the
// system roots plus --ca, unless --insecure or --pin says otherwise.
func ClientConfig(a Addr, o *Options) (*tls.Config, error) {
	var t TLSOptions
	if o != nil {
		t = o.TLS
	}
	cfg := &tls.Config{NextProtos: t.ALPN, ServerName: t.SNI}
	if cfg.ServerName == "" {
		// An IP literal as ServerName makes crypto/tls check IP SANs (and send no SNI).
		cfg.ServerName = a.Host
		if cfg.ServerName == "" {
			cfg.ServerName = "localhost" // `:port` dials this machine
		}
	}
	if t.CA != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if err := addPEM(pool, t.CA, "--ca"); err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if t.Cert != "" || t.Key != "" {
		cert, err := loadPair(t.Cert, t.Key)
		if err != nil {
			return nil, err
		}
		// Always present the certificate the user gave, even when it does not
		// match the server's CA list, so the server says precisely why it is refused.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	if t.Insecure {
		cfg.InsecureSkipVerify = true
	}
	if t.Pin != "" {
		want, err := ParsePin(t.Pin)
		if err != nil {
			return nil, err
		}
		// The pin replaces chain and name checks: it names exactly one certificate.
		cfg.InsecureSkipVerify = true
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("server sent no certificate")
			}
			got := sha256.Sum256(raw[0])
			if !bytes.Equal(got[:], want) {
				return &PinError{Got: Fingerprint(raw[0]), Want: "sha256:" + hex.EncodeToString(want)}
			}
			return nil
		}
	}
	return cfg, nil
}

// ServerConfig is the tls.Config Listen uses: --cert/--key, or an ephemeral
// self-signed certificate (Listen logs its fingerprint); --client-ca
// requires and verifies client certificates.
func ServerConfig(a Addr, o *Options) (*tls.Config, error) {
	var t TLSOptions
	if o != nil {
		t = o.TLS
	}
	cfg := &tls.Config{NextProtos: t.ALPN}
	if t.Cert != "" || t.Key != "" {
		cert, err := loadPair(t.Cert, t.Key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	} else {
		hosts := []string{"localhost", "127.0.0.1", "::1"}
		if h := a.Host; h != "" && h != "localhost" && h != "127.0.0.1" && h != "::1" {
			if ip, err := netip.ParseAddr(h); err != nil || !ip.IsUnspecified() {
				hosts = append(hosts, h)
			}
		}
		cert, err := SelfSigned(hosts...)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if t.ClientCA != "" {
		pool := x509.NewCertPool()
		if err := addPEM(pool, t.ClientCA, "--client-ca"); err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func addPEM(pool *x509.CertPool, file, flag string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadOption, flag, err)
	}
	if !pool.AppendCertsFromPEM(data) {
		return fmt.Errorf("%w: %s %s: no PEM certificate in the file", ErrBadOption, flag, file)
	}
	return nil
}

func loadPair(certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" {
		return tls.Certificate{}, fmt.Errorf("%w: --key %s needs --cert FILE", ErrBadOption, keyFile)
	}
	if keyFile == "" {
		// One PEM file may hold both.
		cert, err := tls.LoadX509KeyPair(certFile, certFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("%w: --cert %s: no private key in it (give --key FILE): %w", ErrBadOption, certFile, err)
		}
		return cert, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: --cert %s --key %s: %w", ErrBadOption, certFile, keyFile, err)
	}
	return cert, nil
}

// SelfSigned makes an ECDSA P-256 certificate valid for hosts (IP literals
// become IP SANs, the rest DNS SANs) for 30 days, usable for both server and
// client authentication. Without hosts it covers localhost, 127.0.0.1 and ::1.
func SelfSigned(hosts ...string) (tls.Certificate, error) {
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"wirecat"}},
		NotBefore:             now.Add(-time.Hour), // tolerate a peer whose clock is a little behind
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// WritePEM writes the certificate chain to certFile and its private key
// (PKCS#8) to keyFile, readable by the owner only.
func WritePEM(cert tls.Certificate, certFile, keyFile string) error {
	var certs bytes.Buffer
	for _, der := range cert.Certificate {
		if err := pem.Encode(&certs, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
			return err
		}
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	if err := os.WriteFile(certFile, certs.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}

// Handshake completes the TLS handshake of a conn accepted from a TLS
// listener, so a failure can be logged for that connection before any data
// flows. Other conns, and conns already handshaken, return nil at once.
func Handshake(ctx context.Context, c net.Conn) error {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return classifyTLS(c.RemoteAddr().String(), err, true)
	}
	return nil
}

// TLSListener is what Listen returns for tls:// addresses; Accept yields
// *tls.Conn whose handshake runs on first use (or Handshake).
type TLSListener struct {
	net.Listener
	Config      *tls.Config
	Fingerprint string // of the server certificate (ephemeral or --cert)
	inner       net.Listener
}

// SyscallConn reaches the listening socket under TLS, so the accept loop
// can shed clients at the descriptor limit (see Acceptor).
func (l *TLSListener) SyscallConn() (syscall.RawConn, error) {
	sc, ok := l.inner.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}
