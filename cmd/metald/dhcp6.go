package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/metal-iaas/metal/internal/netboot"
	"github.com/metal-iaas/metal/pkg/dhcp"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// dhcp6On reports whether --dhcp6-mode runs a DHCPv6 server.
func (c *Config) dhcp6On() bool { return c.DHCP6Mode != "" && c.DHCP6Mode != "off" }

// validate6 checks the --dhcp6-* flags.
func (c *Config) validate6() error {
	switch c.DHCP6Mode {
	case "", "off", "proxy", "full":
	default:
		return fmt.Errorf("--dhcp6-mode %q: want off, proxy or full", c.DHCP6Mode)
	}
	if c.dhcp6On() && c.Interface == "" {
		return fmt.Errorf("--dhcp6-mode %s needs --interface", c.DHCP6Mode)
	}
	if c.DHCP6Mode == "full" && c.DHCP6Range == "" {
		return errors.New("--dhcp6-mode full needs --dhcp6-range START-END")
	}
	return nil
}

// netboot6Config fills nc.DHCP6 from the --dhcp6-* flags.
func (c *Config) netboot6Config(nc *netboot.Config) error {
	nc.DHCP6.Mode = netboot.Mode(c.DHCP6Mode)
	if c.DHCP6Range != "" {
		start, end, err := netboot.ParseRange6(c.DHCP6Range)
		if err != nil {
			return fmt.Errorf("--dhcp6-range: %v", err)
		}
		nc.DHCP6.RangeStart, nc.DHCP6.RangeEnd = start, end
	}
	for _, d := range c.DHCP6DNS {
		a, err := netip.ParseAddr(strings.TrimSpace(d))
		if err != nil || !a.Is6() || a.Is4In6() {
			return fmt.Errorf("--dhcp6-dns %q: want IPv6 addresses", d)
		}
		nc.DHCP6.DNS = append(nc.DHCP6.DNS, a)
	}
	return nil
}

// Leases6 gives netboot the inventory's DHCPv6 leases (table leases6).
func (n netbootInventory) Leases6() dhcp.LeaseStore { return leases6{n.store} }

// leases6 is dhcp.LeaseStore over the inventory's v6 leases.
type leases6 struct{ store inventory.Store }

func (l leases6) Get(ctx context.Context, mac net.HardwareAddr) (dhcp.Lease, error) {
	r, err := l.store.GetLease6(ctx, mac.String())
	if errors.Is(err, inventory.ErrNotFound) {
		return dhcp.Lease{}, dhcp.ErrNotFound
	} else if err != nil {
		return dhcp.Lease{}, err
	}
	return toDHCPLease(r)
}

func (l leases6) Put(ctx context.Context, d dhcp.Lease) error {
	return l.store.PutLease6(ctx, inventory.Lease{MAC: d.MAC.String(), IP: d.IP.String(), Hostname: d.Hostname,
		State: string(d.State), ExpiresAt: d.Expires})
}

func (l leases6) Delete(ctx context.Context, mac net.HardwareAddr) error {
	return l.store.DeleteLease6(ctx, mac.String())
}

func (l leases6) List(ctx context.Context) ([]dhcp.Lease, error) {
	rs, err := l.store.ListLeases6(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]dhcp.Lease, 0, len(rs))
	for _, r := range rs {
		if d, err := toDHCPLease(r); err == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// defaultAdvertiseURL6 is http://[ADDR]:PORT of the first global (or ULA)
// IPv6 address among addrs, for a metald running DHCPv6 without DHCPv4.
func (c *Config) defaultAdvertiseURL6(addrs []net.Addr, port string) (string, bool) {
	if !c.dhcp6On() || c.DHCPMode != "off" {
		return "", false
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() == nil && ipn.IP.IsGlobalUnicast() {
			return "http://" + net.JoinHostPort(ipn.IP.String(), port), true
		}
	}
	return "", false
}
