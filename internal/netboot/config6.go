package netboot

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// Config6 is the DHCPv6 side of the boot services (Config.DHCP6). Router
// advertisements stay the network's job (radvd, the router): they tell
// clients to use DHCPv6 (the M and O flags) and which prefix is on-link.
type Config6 struct {
	// Mode: off (default); proxy answers netboot clients with boot
	// options only (option 59), beside the site's DHCPv6 server or
	// SLAAC; full also gives stateful addresses (IA_NA) from the pool
	// and persists them as leases.
	Mode Mode
	// ServerIP is our IPv6 on Config.Interface, the host of tftp:// boot
	// URLs. Default: AdvertiseURL's host if an IPv6 literal, else the
	// interface's first global (or ULA) address, found by New.
	ServerIP netip.Addr
	// Prefix is the on-link prefix addresses come from in full mode.
	// Default: ServerIP's prefix on the interface.
	Prefix     netip.Prefix
	RangeStart netip.Addr // dynamic pool, inclusive (full mode)
	RangeEnd   netip.Addr
	DNS        []netip.Addr // option 23
	// AdvertiseURL is the base URL DHCPv6 clients reach metald's HTTP
	// server at (iPXE script, HTTP Boot, the agent when the script was
	// asked over IPv6). Default: Config.AdvertiseURL if its host is not
	// an IPv4 literal, else http://[ServerIP]:<its port>.
	AdvertiseURL string
}

// ParseRange6 parses "START-END" (two IPv6 addresses), for --dhcp6-range.
func ParseRange6(s string) (start, end netip.Addr, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return start, end, fmt.Errorf("netboot: range %q: want START-END", s)
	}
	if start, err = netip.ParseAddr(strings.TrimSpace(a)); err != nil {
		return start, end, fmt.Errorf("netboot: range %q: %w", s, err)
	}
	if end, err = netip.ParseAddr(strings.TrimSpace(b)); err != nil {
		return start, end, fmt.Errorf("netboot: range %q: %w", s, err)
	}
	if !is6(start) || !is6(end) || end.Less(start) {
		return start, end, fmt.Errorf("netboot: range %q: want two IPv6 addresses, start <= end", s)
	}
	return start, end, nil
}

func is6(a netip.Addr) bool { return a.Is6() && !a.Is4In6() && a.Zone() == "" }

// withDefaults fills what c can know without looking at interfaces.
func (c Config6) withDefaults(base Config) Config6 {
	if c.Mode == "" {
		c.Mode = ModeOff
	}
	u, err := url.Parse(base.AdvertiseURL)
	if err != nil {
		return c
	}
	host, _ := netip.ParseAddr(u.Hostname())
	if !c.ServerIP.IsValid() && is6(host) {
		c.ServerIP = host
	}
	if c.AdvertiseURL == "" {
		switch {
		case !host.Is4():
			c.AdvertiseURL = base.AdvertiseURL
		case c.ServerIP.IsValid():
			port := u.Port()
			if port == "" {
				port = map[string]string{"https": "443"}[u.Scheme]
			}
			hp := "[" + c.ServerIP.String() + "]"
			if port != "" {
				hp = net.JoinHostPort(c.ServerIP.String(), port)
			}
			c.AdvertiseURL = u.Scheme + "://" + hp
		}
	}
	c.AdvertiseURL = strings.TrimRight(c.AdvertiseURL, "/")
	return c
}

// validate checks c (after withDefaults) against the rest of base.
func (c Config6) validate(base Config) error {
	switch c.Mode {
	case ModeOff:
		return nil
	case ModeProxy, ModeFull:
	default:
		return fmt.Errorf("netboot: dhcp6 mode %q: want off, proxy or full", c.Mode)
	}
	if base.Interface == "" {
		return fmt.Errorf("netboot: dhcp6 mode %s needs an interface", c.Mode)
	}
	if c.ServerIP.IsValid() && !is6(c.ServerIP) {
		return fmt.Errorf("netboot: dhcp6 server address %v is not IPv6", c.ServerIP)
	}
	if c.AdvertiseURL != "" {
		if u, err := url.Parse(c.AdvertiseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("netboot: IPv6 advertise URL %q: want http://[ADDR][:PORT]", c.AdvertiseURL)
		}
	}
	for _, d := range c.DNS {
		if !is6(d) {
			return fmt.Errorf("netboot: dhcp6 DNS server %v is not IPv6", d)
		}
	}
	if c.Mode != ModeFull {
		return nil
	}
	noPool := !c.RangeStart.IsValid() && !c.RangeEnd.IsValid()
	if !noPool && (!is6(c.RangeStart) || !is6(c.RangeEnd) || c.RangeEnd.Less(c.RangeStart)) {
		return fmt.Errorf("netboot: DHCPv6 range %v-%v: want two IPv6 addresses, start <= end", c.RangeStart, c.RangeEnd)
	}
	if noPool {
		return errors.New("netboot: dhcp6 mode full needs a --dhcp6-range pool")
	}
	if c.Prefix.IsValid() && (!c.Prefix.Contains(c.RangeStart) || !c.Prefix.Contains(c.RangeEnd)) {
		return fmt.Errorf("netboot: DHCPv6 range %v-%v must lie in prefix %v", c.RangeStart, c.RangeEnd, c.Prefix)
	}
	return nil
}

// interfaceAddr6 finds our IPv6 address on iface (want, or the first
// global or ULA one) and its on-link prefix.
func interfaceAddr6(iface string, want netip.Addr) (netip.Addr, netip.Prefix, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return netip.Addr{}, netip.Prefix{}, fmt.Errorf("netboot: interface %q: %w", iface, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, netip.Prefix{}, fmt.Errorf("netboot: interface %q addresses: %w", iface, err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		p, err := netip.ParsePrefix(n.String())
		if err != nil || !is6(p.Addr()) || p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if !want.IsValid() || p.Addr() == want {
			return p.Addr(), p.Masked(), nil
		}
	}
	if want.IsValid() {
		return netip.Addr{}, netip.Prefix{}, fmt.Errorf("netboot: %v is not an address of %s: set the prefix", want, iface)
	}
	return netip.Addr{}, netip.Prefix{}, fmt.Errorf("netboot: %s has no global or ULA IPv6 address: set --advertise-url to an IPv6 literal", iface)
}
