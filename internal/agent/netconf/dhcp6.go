package netconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// FamilyOf is the Options.Family for a server URL: 4 or 6 when its host
// is an IPv4 or IPv6 literal, 0 (both) for a name.
func FamilyOf(serverURL string) int {
	u, err := url.Parse(serverURL)
	if err != nil {
		return 0
	}
	a, err := netip.ParseAddr(u.Hostname())
	switch {
	case err != nil:
		return 0
	case a.Is4() || a.Is4In6():
		return 4
	}
	return 6
}

// result6 is what DHCPv6 (or SLAAC) gave one interface.
type result6 struct {
	addr  netip.Addr // the IA_NA address; invalid when SLAAC configured one
	slaac netip.Prefix
	dns   []net.IP
}

// prefixLen6 is the prefix length a DHCPv6 address is configured with:
// DHCPv6 carries none (the router advertises the on-link prefix), and
// every LAN that hands out addresses this way is a /64.
const prefixLen6 = 64

// dhcp6 waits for carrier and a usable link-local address, then runs
// stateful DHCPv6 (Solicit, Request) with a DUID-LL of the NIC's MAC, so
// that the server knows the machine by it. When no DHCPv6 server gives
// an address but router advertisements configured one (SLAAC), that
// address is the result.
func dhcp6(ctx context.Context, l netlink.Link, log *slog.Logger) (result6, error) {
	name := l.Attrs().Name
	hw := l.Attrs().HardwareAddr
	os.Setenv("UROOT_NOHWRNG", "1") // see dhcp
	for ctx.Err() == nil {
		if ll := linkLocalReady(name); ll {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	var last error
	for attempt := 1; ctx.Err() == nil; attempt++ {
		r, err := solicit6(ctx, name, hw)
		if err == nil {
			return r, nil
		}
		last = err
		log.Info("dhcpv6 attempt failed", "interface", name, "err", err)
		if p, ok := slaacPrefix(name); ok && attempt >= 2 {
			log.Info("no DHCPv6 address; using the SLAAC address", "interface", name, "address", p)
			return result6{slaac: p, dns: informationRequest(ctx, name, hw, log)}, nil
		}
	}
	if last == nil {
		last = ctx.Err()
	}
	return result6{}, last
}

func solicit6(ctx context.Context, name string, hw net.HardwareAddr) (result6, error) {
	c, err := nclient6.New(name, nclient6.WithTimeout(3*time.Second), nclient6.WithRetry(2))
	if err != nil {
		return result6{}, fmt.Errorf("dhcpv6 client: %w", err)
	}
	defer c.Close()
	duid := dhcpv6.WithClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: hw})
	adv, err := c.Solicit(ctx, duid)
	if err != nil {
		return result6{}, err
	}
	if err := iaError(adv); err != nil {
		return result6{}, fmt.Errorf("advertise: %w", err)
	}
	rep, err := c.Request(ctx, adv)
	if err != nil {
		return result6{}, err
	}
	if err := iaError(rep); err != nil {
		return result6{}, fmt.Errorf("reply: %w", err)
	}
	a, _ := netip.AddrFromSlice(rep.Options.OneIANA().Options.OneAddress().IPv6Addr)
	return result6{addr: a, dns: rep.Options.DNS()}, nil
}

// informationRequest asks a stateless DHCPv6 server (the router's O
// flag) for the DNS servers; nil when none answers.
func informationRequest(ctx context.Context, name string, hw net.HardwareAddr, log *slog.Logger) []net.IP {
	c, err := nclient6.New(name, nclient6.WithTimeout(2*time.Second), nclient6.WithRetry(1))
	if err != nil {
		return nil
	}
	defer c.Close()
	m, err := dhcpv6.NewMessage(dhcpv6.WithClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: hw}),
		dhcpv6.WithRequestedOptions(dhcpv6.OptionDNSRecursiveNameServer))
	if err != nil {
		return nil
	}
	m.MessageType = dhcpv6.MessageTypeInformationRequest
	rep, err := c.SendAndRead(ctx, nclient6.AllDHCPRelayAgentsAndServers, m, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
	if err != nil {
		log.Info("no stateless DHCPv6 answer", "interface", name, "err", err)
		return nil
	}
	return rep.Options.DNS()
}

// iaError says why m holds no IA_NA address, nil when it holds one.
func iaError(m *dhcpv6.Message) error {
	if st := m.Options.Status(); st != nil && st.StatusCode != iana.StatusSuccess {
		return fmt.Errorf("status %s: %s", st.StatusCode, st.StatusMessage)
	}
	ia := m.Options.OneIANA()
	if ia == nil {
		return errors.New("no IA_NA")
	}
	if st := ia.Options.Status(); st != nil && st.StatusCode != iana.StatusSuccess {
		return fmt.Errorf("IA_NA status %s: %s", st.StatusCode, st.StatusMessage)
	}
	if ad := ia.Options.OneAddress(); ad == nil || ad.IPv6Addr.To16() == nil || ad.ValidLifetime == 0 {
		return errors.New("IA_NA without an address")
	}
	return nil
}

// linkLocalReady reports whether name has a link-local address that is
// past duplicate address detection (nclient6 binds to it).
func linkLocalReady(name string) bool {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return false
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a.IP.IsLinkLocalUnicast() && a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 {
			return true
		}
	}
	return false
}

// slaacPrefix returns a global (or ULA) address the kernel configured on
// name from router advertisements, if any.
func slaacPrefix(name string) (netip.Prefix, bool) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return netip.Prefix{}, false
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return netip.Prefix{}, false
	}
	for _, a := range addrs {
		if a.IP.IsLinkLocalUnicast() || a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			continue
		}
		if p, err := netip.ParsePrefix(a.IPNet.String()); err == nil && p.Addr().Is6() {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// apply6 puts the DHCPv6 address on the link (without duplicate address
// detection: the server just gave it to this MAC) and writes resolv.conf.
// Routes come from the router's advertisements, as on any IPv6 host.
func apply6(l netlink.Link, r result6, o Options, log *slog.Logger) (*Lease, error) {
	lease := &Lease{Interface: l.Attrs().Name, MAC: l.Attrs().HardwareAddr.String()}
	lease.DNS = r.dns
	if r.addr.IsValid() {
		lease.Address = net.IPNet{IP: r.addr.AsSlice(), Mask: net.CIDRMask(prefixLen6, 128)}
		addr := &netlink.Addr{IPNet: &lease.Address, Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrReplace(l, addr); err != nil {
			return nil, fmt.Errorf("netconf: add %s to %s: %w", lease.Address.String(), lease.Interface, err)
		}
	} else {
		lease.Address = net.IPNet{IP: r.slaac.Addr().AsSlice(), Mask: net.CIDRMask(r.slaac.Bits(), 128)}
	}
	if o.ResolvConf != "" && len(lease.DNS) > 0 {
		var b strings.Builder
		for _, d := range lease.DNS {
			fmt.Fprintf(&b, "nameserver %s\n", d)
		}
		if err := os.WriteFile(o.ResolvConf, []byte(b.String()), 0o644); err != nil {
			log.Warn("write resolv.conf", "err", err)
		}
	}
	how := "DHCPv6"
	if !r.addr.IsValid() {
		how = "SLAAC"
	}
	log.Info("network configured ("+how+")", "interface", lease.Interface, "address", lease.Address.String(), "dns", lease.DNS)
	return lease, nil
}
