package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/metal-iaas/metal/internal/metadata"
	"github.com/metal-iaas/metal/internal/netboot"
	"github.com/metal-iaas/metal/internal/oci"
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
	ImageURL     string
	Unknown      string
	DHCPRange    string
	DHCPLease    time.Duration
	DHCPRouter   string
	DHCPDNS      []string
	DHCPDomain   string
	DHCP6Mode    string // dhcp6.go
	DHCP6Range   string
	DHCP6DNS     []string
	LogFormat    string
	LogLevel     string
	Shutdown     time.Duration

	// HTTP hardening and TLS (tls.go).
	HTTPMaxConns int
	TLSCert      string
	TLSKey       string
	TLSAuto      bool
	HTTPS        string
	APIListen    string

	BMCConcurrency int
	BMCTimeout     time.Duration
	PowerPoll      time.Duration

	AgentDir        string
	UEFIBoot        string // --uefi-boot: ipxe or shim (uefiboot.go)
	ShimDir         string // --shim-dir: shimx64.efi and grubx64.efi, default the agent directory
	BootTimeout     time.Duration
	ProgressTimeout time.Duration
	BootEFI         bool

	MaxImageSize   int64
	MaxImageBuffer int64
	ImageFormats   []string
	ImageChunks    bool
	ChunkSize      int64
	// Image store (issue 13): the files in a registry shared by metalds,
	// the image directory a bounded cache.
	ImageStore          string
	ImageStorePlainHTTP bool
	ImageCacheSize      int64
	ImageStoreSync      time.Duration

	// Peer-to-peer chunk sharing between the agents of a wave.
	Peers          bool
	PeerPort       int
	PeerUploadRate int64
	PeerConns      int
	SeedSlots      int

	// Event retention (retention.go).
	EventRetention string
	EventMaxRows   int
}

// withDefaults returns c normalised: --tftp off means none with DHCP off
// (and stays off with DHCP on), --image-url has no trailing slash.
func (c Config) withDefaults() Config {
	if c.TFTP == "off" && c.DHCPMode == "off" && !c.dhcp6On() {
		c.TFTP = ""
	}
	c.ImageURL = strings.TrimSuffix(c.ImageURL, "/")
	return c
}

// Validate checks every field and names the flag at fault; it changes
// nothing (withDefaults normalises).
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("--data-dir must not be empty")
	}
	if err := validateDB(c.DB); err != nil {
		return err
	}
	if err := checkHostPort("--http", c.HTTP, false); err != nil {
		return err
	}
	if c.TFTP != "off" {
		if err := checkHostPort("--tftp", c.TFTP, true); err != nil {
			return err
		}
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
	if err := c.validate6(); err != nil {
		return err
	}
	if c.ChunkSize != 0 && (c.ChunkSize < 64<<10 || c.ChunkSize%4096 != 0 || c.ChunkSize > 1<<30) {
		return fmt.Errorf("--chunk-size %d: want a multiple of 4096 from 65536 (64 KiB) to 1073741824 (1 GiB)", c.ChunkSize)
	}
	if c.PeerPort < 0 || c.PeerPort > 65535 {
		return fmt.Errorf("--peer-port %d: want 0 (any free port) to 65535", c.PeerPort)
	}
	if c.PeerConns < 0 || c.PeerConns > 64 {
		return fmt.Errorf("--peer-conns %d: want 1 to 64", c.PeerConns)
	}
	if c.PeerUploadRate < 0 {
		return fmt.Errorf("--peer-upload-rate %d: want bytes a second, 0 for no bound", c.PeerUploadRate)
	}
	if c.SeedSlots < 0 || c.SeedSlots > 256 {
		return fmt.Errorf("--seed-slots %d: want 1 to 256", c.SeedSlots)
	}
	if c.AdvertiseURL != "" {
		u, err := url.Parse(c.AdvertiseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--advertise-url %q: want http://HOST[:PORT] as machines reach metald", c.AdvertiseURL)
		}
	}
	if c.ImageURL != "" {
		u, err := url.Parse(c.ImageURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return fmt.Errorf("--image-url %q: want http(s)://HOST[:PORT][/PATH] that serves metald's /images/", c.ImageURL)
		}
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	if c.MaxImageSize <= 0 || c.MaxImageBuffer <= 0 {
		return fmt.Errorf("--max-image-size and --max-image-buffer must be positive")
	}
	if c.ImageStore != "" {
		if _, err := oci.NewStore(c.ImageStore, oci.Options{PlainHTTP: c.ImageStorePlainHTTP}); err != nil {
			return fmt.Errorf("--image-store: %w", err)
		}
	}
	if c.ImageStoreSync != 0 && c.ImageStoreSync < time.Second {
		return fmt.Errorf("--image-store-sync %s: want 1s or more", c.ImageStoreSync)
	}
	if c.ImageCacheSize < 0 {
		return fmt.Errorf("--image-cache-size %d: want 0 (unbounded) or a size in bytes", c.ImageCacheSize)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if _, err := c.retentionConfig(); err != nil {
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

// netbootConfig derives the boot services' configuration; it fails with a
// message naming the flag at fault.
func (c *Config) netbootConfig() (netboot.Config, error) {
	nc := netboot.Config{
		Mode:      netboot.Mode(c.DHCPMode),
		Interface: c.Interface,
		TFTPAddr:  c.TFTP,
		TFTPRoot:  c.TFTPRoot,
		Unknown:   netboot.Unknown(c.Unknown),
		LeaseTime: c.DHCPLease,
		Domain:    c.DHCPDomain,
	}
	if err := c.uefiBoot(&nc); err != nil {
		return nc, err
	}
	switch {
	case nc.TFTPAddr == "" && (c.DHCPMode != "off" || c.dhcp6On()):
		// metald answers PXE clients, which fetch their iPXE binary over
		// TFTP: serve it, or UEFI firmware waits a minute before trying
		// anything else.
		nc.TFTPAddr = ":69"
	case nc.TFTPAddr == "":
		nc.TFTPAddr = "off"
	}
	nc.AdvertiseURL = c.AdvertiseURL
	if nc.AdvertiseURL == "" {
		u, err := c.defaultAdvertiseURL()
		if err != nil {
			return nc, err
		}
		nc.AdvertiseURL = u
	}
	if c.DHCPRange != "" {
		start, end, err := netboot.ParseRange(c.DHCPRange)
		if err != nil {
			return nc, fmt.Errorf("--dhcp-range: %v", err)
		}
		nc.RangeStart, nc.RangeEnd = start, end
	}
	if c.DHCPRouter != "" {
		a, err := netip.ParseAddr(c.DHCPRouter)
		if err != nil || !a.Is4() {
			return nc, fmt.Errorf("--dhcp-router %q: want an IPv4 address", c.DHCPRouter)
		}
		nc.Router = []netip.Addr{a}
	}
	for _, d := range c.DHCPDNS {
		a, err := netip.ParseAddr(strings.TrimSpace(d))
		if err != nil || !a.Is4() {
			return nc, fmt.Errorf("--dhcp-dns %q: want IPv4 addresses", d)
		}
		nc.DNS = append(nc.DNS, a)
	}
	if err := c.netboot6Config(&nc); err != nil {
		return nc, err
	}
	nc = nc.WithDefaults()
	if err := nc.Validate(); err != nil {
		return nc, err
	}
	return nc, nil
}

// defaultAdvertiseURL is http://HOST:PORT of --http when HOST is a usable
// address, else the first IPv4 of --interface (with only DHCPv6 on, its
// first global IPv6), else loopback (which only suits --dhcp-mode off).
func (c *Config) defaultAdvertiseURL() (string, error) {
	host, port, _ := net.SplitHostPort(c.HTTP)
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return "http://" + net.JoinHostPort(host, port), nil
	}
	if c.Interface != "" {
		ifi, err := net.InterfaceByName(c.Interface)
		if err != nil {
			return "", fmt.Errorf("--interface %s: %v", c.Interface, err)
		}
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return "http://" + net.JoinHostPort(ipn.IP.String(), port), nil
			}
		}
		if u, ok := c.defaultAdvertiseURL6(addrs, port); ok {
			return u, nil
		}
		return "", fmt.Errorf("--interface %s has no IPv4 address: set --advertise-url", c.Interface)
	}
	if c.DHCPMode != "off" {
		return "", fmt.Errorf("--dhcp-mode %s needs --advertise-url or --interface", c.DHCPMode)
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port), nil
}

// metadataNetwork is what config drives say about the network: metald's
// own subnet, gateway and DNS in full DHCP mode (machines with a
// reserved address get it statically), nothing otherwise (DHCP);
// DHCPv6 when metald answers it (full: its addresses, proxy: the site's
// server's), and no DHCPv4 on an IPv6-only network (metald runs no DHCPv4
// and is reached at an IPv6 literal).
func metadataNetwork(nc netboot.Config, subnet netip.Prefix) metadata.Network {
	n := metadata.Network{Static: nc.Mode == netboot.ModeFull, Subnet: subnet, DNS: nc.DNS, Domain: nc.Domain,
		DHCP6:   nc.DHCP6.Mode == netboot.ModeFull || nc.DHCP6.Mode == netboot.ModeProxy,
		NoDHCP4: (nc.Mode == netboot.ModeOff || nc.Mode == "") && isIPv6URL(nc.AdvertiseURL)}
	if len(nc.Router) > 0 {
		n.Gateway = nc.Router[0]
	}
	return n
}

// isIPv6URL reports whether u's host is an IPv6 literal.
func isIPv6URL(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(p.Hostname())
	return err == nil && a.Is6() && !a.Is4In6()
}
