package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
)

// Transport is the agent's HTTP transport: http.DefaultTransport's
// settings with TLSConfig(caFile).
func Transport(caFile string, log *slog.Logger) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = TLSConfig(caFile, log)
	return t
}

// TLSConfig trusts the system roots (in the initramfs, the bundle
// metal-initramfs --ca-certs installs) plus the CA in caFile, which metald
// appends to the initrd it serves when it runs with TLS
// (agentapi.CAFile). A missing caFile is normal without TLS.
func TLSConfig(caFile string, log *slog.Logger) *tls.Config {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	b, err := os.ReadFile(caFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		log.Warn("cannot read metald's CA; HTTPS to metald will fail", "file", caFile, "err", err)
	case !roots.AppendCertsFromPEM(b):
		log.Warn("no certificate in metald's CA file; HTTPS to metald will fail", "file", caFile)
	default:
		log.Info("trusting metald's CA", "file", caFile)
	}
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}
