package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func tlsBase() Config {
	return Config{DataDir: "d", HTTP: "10.0.0.1:8080", HTTPS: ":8443", DHCPMode: "off", Unknown: "ignore", LogFormat: "text",
		LogLevel: "info", DHCPLease: time.Hour, MaxImageSize: 1, MaxImageBuffer: 1}
}

func TestValidateTLS(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		err  string // "" means valid
	}{
		{"no TLS", func(c *Config) {}, ""},
		{"auto", func(c *Config) { c.TLSAuto = true }, ""},
		{"operator certificate", func(c *Config) { c.TLSCert, c.TLSKey = "c.pem", "k.pem" }, ""},
		{"auto and a certificate", func(c *Config) { c.TLSAuto, c.TLSCert, c.TLSKey = true, "c.pem", "k.pem" }, "exclude each other"},
		{"certificate without key", func(c *Config) { c.TLSCert = "c.pem" }, "go together"},
		{"key without certificate", func(c *Config) { c.TLSKey = "k.pem" }, "go together"},
		{"bad --https", func(c *Config) { c.TLSAuto, c.HTTPS = true, "nowhere" }, "--https"},
		{"empty --https with TLS", func(c *Config) { c.TLSAuto, c.HTTPS = true, "" }, "--https"},
		{"bad --api-listen", func(c *Config) { c.APIListen = "api.example:1" }, "--api-listen"},
		{"api on the http address", func(c *Config) { c.APIListen = "10.0.0.1:8080" }, "are both"},
		{"https on the http address", func(c *Config) { c.TLSAuto, c.HTTPS = true, "10.0.0.1:8080" }, "are both"},
		{"--https ignored without TLS", func(c *Config) { c.HTTPS = "10.0.0.1:8080" }, ""},
		{"https advertise URL without TLS", func(c *Config) { c.AdvertiseURL = "https://10.0.0.1:8443" }, "needs --tls-auto"},
		{"https advertise URL with TLS", func(c *Config) { c.TLSAuto, c.AdvertiseURL = true, "https://10.0.0.1:8443" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tlsBase()
			tc.edit(&c)
			err := c.Validate()
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Validate: %v, want %q", err, tc.err)
			}
		})
	}
}

func TestMachineURLs(t *testing.T) {
	for _, tc := range []struct {
		tls                    bool
		advertise, boot, agent string
	}{
		{false, "http://10.0.0.1:8080", "http://10.0.0.1:8080", "http://10.0.0.1:8080"},
		{true, "http://10.0.0.1:8080", "http://10.0.0.1:8080", "https://10.0.0.1:8443"},
		{true, "https://metal.example:443", "http://metal.example:8080", "https://metal.example:443"},
		{true, "http://[fd00::1]:8080", "http://[fd00::1]:8080", "https://[fd00::1]:8443"},
	} {
		c := tlsBase()
		c.TLSAuto = tc.tls
		boot, agent, err := c.machineURLs(tc.advertise)
		if err != nil || boot != tc.boot || agent != tc.agent {
			t.Errorf("tls %v, %s: boot %s agent %s (%v), want %s %s", tc.tls, tc.advertise, boot, agent, err, tc.boot, tc.agent)
		}
	}
}

func TestTLSSetupAuto(t *testing.T) {
	c := tlsBase()
	c.TLSAuto, c.DataDir = true, t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	conf, caPEM, err := c.tlsSetup("https://10.0.0.1:8443", log)
	if err != nil {
		t.Fatal(err)
	}
	if len(conf.Certificates) != 1 || !strings.HasPrefix(string(caPEM), "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("tls config %d certificates, CA %q", len(conf.Certificates), caPEM)
	}
	leaf := conf.Certificates[0].Leaf
	for _, n := range []string{"10.0.0.1", "127.0.0.1", "localhost"} {
		if leaf.VerifyHostname(n) != nil {
			t.Errorf("server certificate does not cover %s", n)
		}
	}
	if st, err := os.Stat(filepath.Join(c.DataDir, "tls", "ca.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ca.key: %v %v", st, err)
	}
	c.TLSAuto = false
	if conf, pem, err := c.tlsSetup("http://10.0.0.1:8080", log); conf != nil || pem != nil || err != nil {
		t.Errorf("without TLS: %v %v %v", conf, pem, err)
	}
}
