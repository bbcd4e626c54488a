// Package tlsca is metald's own small certificate authority for
// --tls-auto: an ECDSA P-256 CA and a server certificate signed by it,
// kept in the data directory (files 0600), reused across restarts and
// reissued when the server certificate no longer covers the names machines
// and operators use. It also loads an operator's certificate
// (--tls-cert/--tls-key) and computes fingerprints.
package tlsca

import (
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
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names under the TLS directory.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
)

// Lifetimes of what Ensure issues; a server certificate within renewBefore
// of its end is reissued.
const (
	caLifetime     = 10 * 365 * 24 * time.Hour
	serverLifetime = 2 * 365 * 24 * time.Hour
	renewBefore    = 30 * 24 * time.Hour
)

// Dir returns the TLS directory inside metald's data directory.
func Dir(dataDir string) string { return filepath.Join(dataDir, "tls") }

// CA is the loaded or created certificate authority and server identity.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Server  tls.Certificate
	// Issued says whether Ensure created the CA or (re)issued the server
	// certificate in this call.
	IssuedCA, IssuedServer bool
}

// Fingerprint is the SHA-256 of the CA certificate, colon-separated hex.
func (c *CA) Fingerprint() string { return Fingerprint(c.Cert) }

// Fingerprint is the SHA-256 of a certificate's DER, as AA:BB:….
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// Ensure loads the CA and server certificate from dir, creating the CA if
// it does not exist and (re)issuing the server certificate if it is
// missing, expiring, not signed by the CA, or does not cover every name in
// hosts (DNS names or IP addresses; localhost and 127.0.0.1 are always
// added). dir is created 0700, keys and certificates are written 0600.
func Ensure(dir string, hosts []string, log *slog.Logger) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	ca := &CA{}
	caKey, err := loadOrCreateCA(dir, ca)
	if err != nil {
		return nil, err
	}
	names := SANs(hosts)
	srvCert, err := tls.LoadX509KeyPair(filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile))
	if err == nil {
		leaf, perr := x509.ParseCertificate(srvCert.Certificate[0])
		if perr == nil && covers(leaf, names) && signedBy(leaf, ca.Cert) && time.Until(leaf.NotAfter) > renewBefore {
			srvCert.Leaf = leaf
			ca.Server = srvCert
			return ca, nil
		}
		log.Info("tls: reissuing the server certificate", "reason", "names, issuer or validity changed", "names", names)
	} else if !errors.Is(err, os.ErrNotExist) {
		log.Warn("tls: server certificate unreadable, reissuing", "err", err)
	}
	if ca.Server, err = issueServer(dir, ca.Cert, caKey, names); err != nil {
		return nil, err
	}
	ca.IssuedServer = true
	return ca, nil
}

// LoadCA reads the CA certificate from dir (for `metald ca`).
func LoadCA(dir string) (*x509.Certificate, []byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, nil, fmt.Errorf("tlsca: %w (metald creates it on its first start with --tls-auto)", err)
	}
	c, err := parseCertPEM(b)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsca: %s: %w", CACertFile, err)
	}
	return c, b, nil
}

// LoadKeyPair reads an operator's certificate (chain) and key.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return c, fmt.Errorf("tlsca: %w", err)
	}
	if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
		return c, fmt.Errorf("tlsca: %s: %w", certFile, err)
	}
	return c, nil
}

// SANs normalises hosts (URL hosts, listen hosts) into the names a server
// certificate must carry: without ports and brackets, without duplicates
// and unspecified addresses, plus localhost and 127.0.0.1.
func SANs(hosts []string) []string {
	out := []string{"localhost", "127.0.0.1"}
	for _, h := range hosts {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		h = strings.ToLower(strings.Trim(h, "[]"))
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if ip.IsUnspecified() {
				continue
			}
			h = ip.String()
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// covers says whether every name is in the certificate's SANs.
func covers(c *x509.Certificate, names []string) bool {
	for _, n := range names {
		if c.VerifyHostname(n) != nil {
			return false
		}
	}
	return true
}

func signedBy(c, ca *x509.Certificate) bool {
	return c.CheckSignatureFrom(ca) == nil
}

func loadOrCreateCA(dir string, ca *CA) (*ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("tlsca: %s is not an ECDSA key", keyPath)
		}
		if ca.Cert, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tlsca: %s: %w", certPath, err)
		}
		ca.CertPEM, err = os.ReadFile(certPath)
		return key, err
	}
	_, e1 := os.Stat(certPath)
	_, e2 := os.Stat(keyPath)
	if !errors.Is(e1, os.ErrNotExist) || !errors.Is(e2, os.ErrNotExist) {
		// Never overwrite a CA that machines may already trust.
		return nil, fmt.Errorf("tlsca: CA in %s unusable (remove %s and %s to create a new one): %w", dir, CACertFile, CAKeyFile, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "metald CA " + host, Organization: []string{"metal"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("tlsca: create CA: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, err
	}
	ca.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFile(certPath, ca.CertPEM); err != nil {
		return nil, err
	}
	ca.Cert, _ = x509.ParseCertificate(der)
	ca.IssuedCA = true
	return key, nil
}

func issueServer(dir string, caCert *x509.Certificate, caKey *ecdsa.PrivateKey, names []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsca: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[len(names)-1], Organization: []string{"metal"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(serverLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsca: issue server certificate: %w", err)
	}
	if err := writeKey(filepath.Join(dir, ServerKeyFile), key); err != nil {
		return tls.Certificate{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFile(filepath.Join(dir, ServerCertFile), certPEM); err != nil {
		return tls.Certificate{}, err
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n.Add(n, big.NewInt(1))
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tlsca: %w", err)
	}
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// writeFile writes b to path, mode 0600, through a temporary file and a
// rename so that a crash never leaves half a key.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("tlsca: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("tlsca: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tlsca: %w", err)
	}
	return nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}
