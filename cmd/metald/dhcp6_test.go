package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/internal/netboot"
)

// TestDHCP6Flags: an IPv6-only metald (--dhcp-mode off, --dhcp6-mode
// full, an IPv6 --advertise-url) gets TFTP by default, the pool and DNS
// parsed, and the IPv6 URL for boot scripts; bad flags are named.
func TestDHCP6Flags(t *testing.T) {
	base := Config{DataDir: "d", HTTP: "[fd00::1]:8080", Unknown: "ignore", LogFormat: "text", LogLevel: "info",
		DHCPLease: time.Hour, MaxImageSize: 1, MaxImageBuffer: 1, DHCPMode: "off", Interface: "lo",
		AdvertiseURL: "http://[fd00::1]:8080", DHCP6Mode: "full", DHCP6Range: "fd00::100-fd00::1ff", DHCP6DNS: []string{"fd00::53"}}
	cfg := base.withDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	nc, err := cfg.netbootConfig()
	if err != nil {
		t.Fatal(err)
	}
	if nc.TFTPAddr != ":69" || nc.DHCP6.Mode != netboot.ModeFull || nc.DHCP6.RangeStart.String() != "fd00::100" ||
		nc.DHCP6.RangeEnd.String() != "fd00::1ff" || len(nc.DHCP6.DNS) != 1 || nc.DHCP6.ServerIP.String() != "fd00::1" ||
		nc.DHCP6.AdvertiseURL != "http://[fd00::1]:8080" || nc.AgentURL != "http://[fd00::1]:8080" {
		t.Errorf("netboot config: TFTP %q DHCP6 %+v agent %q", nc.TFTPAddr, nc.DHCP6, nc.AgentURL)
	}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.DHCP6Mode = "on" }, "--dhcp6-mode"},
		{func(c *Config) { c.DHCP6Range = "" }, "--dhcp6-range"},
		{func(c *Config) { c.DHCP6Range = "10.0.0.1-10.0.0.9" }, "IPv6"},
		{func(c *Config) { c.DHCP6DNS = []string{"10.0.0.53"} }, "--dhcp6-dns"},
		{func(c *Config) { c.Interface = "" }, "--interface"},
	} {
		c := base
		tc.edit(&c)
		c = c.withDefaults()
		err := c.Validate()
		if err == nil {
			_, err = c.netbootConfig()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error naming %q, got %v", tc.want, err)
		}
	}
}

// TestDefaultAdvertiseURL6: with DHCPv6 alone, an interface without IPv4
// advertises its global IPv6 address; with DHCPv4 on, it does not.
func TestDefaultAdvertiseURL6(t *testing.T) {
	addrs := []net.Addr{&net.IPNet{IP: net.ParseIP("fe80::1"), Mask: net.CIDRMask(64, 128)},
		&net.IPNet{IP: net.ParseIP("fd66::1"), Mask: net.CIDRMask(64, 128)}}
	c := Config{DHCPMode: "off", DHCP6Mode: "full"}
	if u, ok := c.defaultAdvertiseURL6(addrs, "8080"); !ok || u != "http://[fd66::1]:8080" {
		t.Errorf("DHCPv6 only: %q %v", u, ok)
	}
	c.DHCPMode = "full"
	if u, ok := c.defaultAdvertiseURL6(addrs, "8080"); ok {
		t.Errorf("with DHCPv4 on: %q", u)
	}
}
