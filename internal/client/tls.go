package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
)

// TrustCA makes c trust the CA certificates in a PEM file, besides the
// system's, for an https:// server: the CA of metald serve --tls-auto,
// which `metald ca` prints.
func (c *Client) TrustCA(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("ca cert: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(b) {
		return fmt.Errorf("ca cert %s: no PEM certificate in it", file)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	c.http.Transport = t
	return nil
}
