package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config is metald serve's configuration, validated before any listener
// opens.
type Config struct {
	DataDir      string
	DB           string
	HTTP         string
	TFTP         string
	TFTPRoot     string
	DHCPMode     string
	Interface    string
	AdvertiseURL string
	Unknown      string
	DHCPRange    string
	DHCPLease    time.Duration
	DHCPRouter   string
	DHCPDNS      []string
	DHCPDomain   string
	LogFormat    string
	LogLevel     string
	Shutdown     time.Duration
}

// Validate checks every field and names the flag at fault.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("--data-dir must not be empty")
	}
	if c.DB != "" && !strings.HasPrefix(c.DB, "postgres://") && !strings.HasPrefix(c.DB, "postgresql://") {
		return fmt.Errorf("--db %q: want postgres://… (leave empty for SQLite in the data dir)", c.DB)
	}
	if c.DB != "" {
		return fmt.Errorf("--db: PostgreSQL is not supported by this build yet; leave --db empty to use SQLite in --data-dir")
	}
	if err := checkHostPort("--http", c.HTTP, false); err != nil {
		return err
	}
	if err := checkHostPort("--tftp", c.TFTP, true); err != nil {
		return err
	}
	switch c.DHCPMode {
	case "off", "proxy", "full":
	default:
		return fmt.Errorf("--dhcp-mode %q: want off, proxy or full", c.DHCPMode)
	}
	switch c.Unknown {
	case "ignore", "discover":
	default:
		return fmt.Errorf("--unknown %q: want ignore or discover", c.Unknown)
	}
	if c.AdvertiseURL != "" {
		u, err := url.Parse(c.AdvertiseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--advertise-url %q: want http://HOST[:PORT] as machines reach metald", c.AdvertiseURL)
		}
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	return nil
}

// checkHostPort validates a listen address; empty is allowed when optional.
func checkHostPort(flag, addr string, optional bool) error {
	if addr == "" {
		if optional {
			return nil
		}
		return fmt.Errorf("%s must not be empty", flag)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: want HOST:PORT or :PORT: %v", flag, addr, err)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("%s %q: host must be an IP address", flag, addr)
	}
	var n int
	if _, err := fmt.Sscanf(port, "%d", &n); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s %q: bad port", flag, addr)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// newLogger builds the logger from --log-format and --log-level.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	lvl, err := parseLevel(level)
	if err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

var stderr io.Writer = os.Stderr
