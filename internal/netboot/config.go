// Package netboot wires metald's boot services together: the DHCP server
// (pkg/dhcp) in proxy or full mode with the boot policy (pkg/pxe), the
// read-only TFTP server, and the HTTP routes /boot.ipxe and /ipxe/:file.
// What it needs from the inventory is the Inventory interface below.
package netboot

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/metal-iaas/metal/pkg/pxe"
)

// Mode selects the DHCP server behaviour.
type Mode string

// DHCP modes.
const (
	ModeOff   Mode = "off"   // no DHCP; TFTP and HTTP only
	ModeProxy Mode = "proxy" // ProxyDHCP beside the site's DHCP server: boot options only, ports 67+4011
	ModeFull  Mode = "full"  // authoritative server: addresses (reservations + pool) and boot options
)

// Unknown selects what happens to MACs the inventory does not know.
type Unknown string

// Unknown-MAC policies.
const (
	UnknownIgnore   Unknown = "ignore"   // no DHCP answer, /boot.ipxe 404
	UnknownDiscover Unknown = "discover" // create the machine in state "discovered", boot the agent
)

// Config is everything the boot services need. Validate before New.
type Config struct {
	Mode         Mode
	Interface    string     // interface DHCP binds to (SO_BINDTODEVICE); required unless Mode is off
	AdvertiseURL string     // base URL machines reach metald's HTTP server at, e.g. http://10.0.0.1:8080
	AgentURL     string     // base URL the agent talks to (metal.url), e.g. https://10.0.0.1:8443; default AdvertiseURL
	ServerIP     netip.Addr // our IPv4 on Interface (option 54, next-server); default: AdvertiseURL's host if an IPv4 literal
	TFTPAddr     string     // TFTP listen address, default ":69"; "off" disables TFTP
	TFTPRoot     string     // optional directory served over TFTP and /ipxe/ before the embedded binaries
	Unknown      Unknown    // default ignore
	// Full mode.
	Subnet     netip.Prefix  // default: the prefix of ServerIP on Interface
	RangeStart netip.Addr    // dynamic pool, inclusive
	RangeEnd   netip.Addr    //
	LeaseTime  time.Duration // default 1h
	Router     []netip.Addr  // option 3
	DNS        []netip.Addr  // option 6
	Domain     string        // option 15
	// Secure Boot chain (grub.go). UEFIBoot is what UEFI x86-64 PXE
	// firmware gets unless the machine says otherwise: iPXE (default) or
	// Debian's signed shim, which loads grubx64.efi; both are read from
	// ShimDir (shimx64.efi, grubx64.efi) and GRUB loads the agent's
	// kernel and initrd from AgentFiles over TFTP.
	UEFIBoot   pxe.UEFIBoot
	ShimDir    string
	AgentFiles AgentFiles
	// DHCP6 is the DHCPv6 side (config6.go), off by default.
	DHCP6 Config6
	// Tuning.
	DHCPWorkers    int  // default 4
	TFTPAnticipate uint // pin/tftp send-ahead window, default 0 (RFC 1350 lock-step)
}

// ParseRange parses "START-END" (two IPv4 addresses), for --dhcp-range.
func ParseRange(s string) (start, end netip.Addr, err error) {
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
	if !start.Is4() || !end.Is4() || end.Less(start) {
		return start, end, fmt.Errorf("netboot: range %q: want two IPv4 addresses, start <= end", s)
	}
	return start, end, nil
}

// WithDefaults returns c with its zero fields filled: mode off, unknown
// MACs ignored, the URLs without a trailing slash (AgentURL defaults to
// AdvertiseURL), ServerIP from an IPv4 advertise URL, TFTP on :69, leases
// of an hour.
func (c Config) WithDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeOff
	}
	if c.Unknown == "" {
		c.Unknown = UnknownIgnore
	}
	c.AdvertiseURL = strings.TrimRight(c.AdvertiseURL, "/")
	if c.AgentURL == "" {
		c.AgentURL = c.AdvertiseURL
	}
	c.AgentURL = strings.TrimRight(c.AgentURL, "/")
	if !c.ServerIP.IsValid() {
		if u, err := url.Parse(c.AdvertiseURL); err == nil {
			if ip, err := netip.ParseAddr(u.Hostname()); err == nil && ip.Is4() {
				c.ServerIP = ip
			}
		}
	}
	if c.TFTPAddr == "" {
		c.TFTPAddr = ":69"
	}
	if c.LeaseTime == 0 {
		c.LeaseTime = time.Hour
	}
	if c.UEFIBoot == "" {
		c.UEFIBoot = pxe.UEFIBootIPXE
	}
	c.DHCP6 = c.DHCP6.withDefaults(c)
	return c
}

// Validate checks c as WithDefaults completes it; it changes nothing and
// opens nothing.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch c.Mode {
	case ModeOff, ModeProxy, ModeFull:
	default:
		return fmt.Errorf("netboot: dhcp mode %q: want off, proxy or full", c.Mode)
	}
	switch c.Unknown {
	case UnknownIgnore, UnknownDiscover:
	default:
		return fmt.Errorf("netboot: unknown-MAC policy %q: want ignore or discover", c.Unknown)
	}
	u, err := url.Parse(c.AdvertiseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("netboot: advertise URL %q: want http://HOST[:PORT]", c.AdvertiseURL)
	}
	if a, err := url.Parse(c.AgentURL); err != nil || (a.Scheme != "http" && a.Scheme != "https") || a.Host == "" {
		return fmt.Errorf("netboot: agent URL %q: want http(s)://HOST[:PORT]", c.AgentURL)
	}
	if _, err := pxe.ParseUEFIBoot(string(c.UEFIBoot)); err != nil {
		return fmt.Errorf("netboot: %w", err)
	}
	if c.UEFIBoot == pxe.UEFIBootShim && (c.TFTPAddr == "off" || c.ShimDir == "") {
		return errors.New("netboot: uefi boot shim needs TFTP on and a directory with shimx64.efi and grubx64.efi")
	}
	if err := c.DHCP6.validate(c); err != nil {
		return err
	}
	if c.Mode == ModeOff {
		return nil
	}
	if c.Interface == "" {
		return fmt.Errorf("netboot: dhcp mode %s needs an interface", c.Mode)
	}
	if !c.ServerIP.Is4() {
		return errors.New("netboot: server IP unknown: set it or use an IPv4 literal in the advertise URL")
	}
	if c.Mode == ModeFull {
		noPool := !c.RangeStart.IsValid() && !c.RangeEnd.IsValid()
		if !noPool && (!c.RangeStart.Is4() || !c.RangeEnd.Is4() || c.RangeEnd.Less(c.RangeStart)) {
			return fmt.Errorf("netboot: DHCP range %v-%v: want two IPv4 addresses, start <= end", c.RangeStart, c.RangeEnd)
		}
		if noPool && c.Unknown == UnknownDiscover {
			return errors.New("netboot: --unknown discover in full mode needs a --dhcp-range pool to give unknown machines addresses")
		}
		if !noPool && c.Subnet.IsValid() && (!c.Subnet.Contains(c.RangeStart) || !c.Subnet.Contains(c.RangeEnd) || !c.Subnet.Contains(c.ServerIP)) {
			return fmt.Errorf("netboot: range %v-%v and server %v must lie in subnet %v", c.RangeStart, c.RangeEnd, c.ServerIP, c.Subnet)
		}
		if c.LeaseTime < time.Minute {
			return fmt.Errorf("netboot: lease time %v shorter than 1m", c.LeaseTime)
		}
	}
	return nil
}
