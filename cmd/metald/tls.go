package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"

	"github.com/metal-iaas/metal/internal/tlsca"
)

// validateTLS checks the TLS and listener flags: --tls-auto or a
// certificate and key, listen addresses that differ, an https
// --advertise-url only with TLS.
func (c *Config) validateTLS() error {
	if c.TLSAuto && (c.TLSCert != "" || c.TLSKey != "") {
		return fmt.Errorf("--tls-auto and --tls-cert/--tls-key exclude each other")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if err := checkHostPort("--api-listen", c.APIListen, true); err != nil {
		return err
	}
	if c.tlsOn() {
		if err := checkHostPort("--https", c.HTTPS, false); err != nil {
			return err
		}
	}
	seen := map[string]string{}
	for _, l := range [][2]string{{"--http", c.HTTP}, {"--https", c.httpsAddr()}, {"--api-listen", c.APIListen}} {
		if l[1] == "" {
			continue
		}
		if other, dup := seen[l[1]]; dup {
			return fmt.Errorf("%s and %s are both %s", other, l[0], l[1])
		}
		seen[l[1]] = l[0]
	}
	if u, err := url.Parse(c.AdvertiseURL); c.AdvertiseURL != "" && err == nil && u.Scheme == "https" && !c.tlsOn() {
		return fmt.Errorf("--advertise-url %s is https: it needs --tls-auto or --tls-cert/--tls-key", c.AdvertiseURL)
	}
	return nil
}

func (c *Config) tlsOn() bool { return c.TLSAuto || c.TLSCert != "" }

// httpsAddr is --https when TLS is on, else empty.
func (c *Config) httpsAddr() string {
	if c.tlsOn() {
		return c.HTTPS
	}
	return ""
}

// machineURLs splits the advertise URL into what iPXE fetches boot files
// from (always plain HTTP: iPXE does not trust metald's CA) and what the
// agent talks to (HTTPS when TLS is on). An http:// advertise URL names
// the boot URL and the agent's is https:// on the same host at --https's
// port; an https:// one names the agent's and the boot URL is http:// on
// the same host at --http's port.
func (c *Config) machineURLs(advertise string) (boot, agent string, err error) {
	if !c.tlsOn() {
		return advertise, advertise, nil
	}
	u, err := url.Parse(advertise)
	if err != nil {
		return "", "", fmt.Errorf("--advertise-url %q: %v", advertise, err)
	}
	other := *u
	if u.Scheme == "https" {
		_, port, _ := net.SplitHostPort(c.HTTP)
		other.Scheme, other.Host = "http", net.JoinHostPort(u.Hostname(), port)
		return other.String(), advertise, nil
	}
	_, port, _ := net.SplitHostPort(c.HTTPS)
	other.Scheme, other.Host = "https", net.JoinHostPort(u.Hostname(), port)
	return advertise, other.String(), nil
}

// tlsSetup loads the operator's certificate or ensures the auto CA and
// server certificate; it returns nil without TLS, and the CA's PEM that
// the agent's initrd carries (auto CA only; an operator's CA goes into the
// initramfs with metal-initramfs --ca-certs).
func (c *Config) tlsSetup(advertise string, log *slog.Logger) (*tls.Config, []byte, error) {
	switch {
	case c.TLSCert != "":
		cert, err := tlsca.LoadKeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, nil, err
		}
		log.Info("tls: operator certificate", "subject", cert.Leaf.Subject.String(), "names", cert.Leaf.DNSNames,
			"ips", cert.Leaf.IPAddresses, "not_after", cert.Leaf.NotAfter, "sha256", tlsca.Fingerprint(cert.Leaf))
		return serverTLS(cert), nil, nil
	case c.TLSAuto:
		hosts := []string{c.HTTP, c.HTTPS, c.APIListen}
		if u, err := url.Parse(advertise); err == nil {
			hosts = append(hosts, u.Hostname())
		}
		ca, err := tlsca.Ensure(tlsca.Dir(c.DataDir), hosts, log)
		if err != nil {
			return nil, nil, err
		}
		log.Info("tls: metald CA (metald ca prints it)", "ca_sha256", ca.Fingerprint(), "created", ca.IssuedCA,
			"dir", tlsca.Dir(c.DataDir), "server_names", tlsca.SANs(hosts), "server_cert_issued", ca.IssuedServer)
		return serverTLS(ca.Server), ca.CertPEM, nil
	}
	return nil, nil, nil
}

func serverTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// caDir is where --tls-auto keeps its files for a data dir.
func caDir(dataDir string) string { return filepath.Clean(tlsca.Dir(dataDir)) }
