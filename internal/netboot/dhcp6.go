package netboot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/pkg/dhcp"
	"github.com/metal-iaas/metal/pkg/pxe"
)

// Leases6 is the optional part of an Inventory that DHCPv6 full mode
// needs: the v6 leases, one per MAC, kept apart from the v4 ones that
// the embedded dhcp.LeaseStore holds.
type Leases6 interface {
	Leases6() dhcp.LeaseStore
}

// service6 is the DHCPv6 half of the boot services.
type service6 struct {
	s      *Service
	cfg    Config6
	srv    *dhcp.Server6
	alloc  *dhcp.Allocator6 // full mode only
	leases dhcp.LeaseStore  // full mode only
}

// newService6 builds the DHCPv6 server of s (nil when DHCPv6 is off):
// it settles our IPv6 address and prefix from the interface and, in full
// mode, loads the v6 leases.
func newService6(s *Service, reg prometheus.Registerer) (*service6, error) {
	cfg := s.cfg.DHCP6
	if cfg.Mode == ModeOff || cfg.Mode == "" {
		return nil, nil
	}
	ip, prefix, err := interfaceAddr6(s.cfg.Interface, cfg.ServerIP)
	if err != nil {
		return nil, err
	}
	cfg.ServerIP = ip
	if !cfg.Prefix.IsValid() {
		cfg.Prefix = prefix
	}
	cfg = cfg.withDefaults(s.cfg)
	if err := cfg.validate(s.cfg); err != nil {
		return nil, err
	}
	s.cfg.DHCP6 = cfg
	v := &service6{s: s, cfg: cfg}
	if cfg.Mode == ModeFull {
		l6, ok := s.inv.(Leases6)
		if !ok {
			return nil, errors.New("netboot: dhcp6 full mode: the inventory keeps no DHCPv6 leases")
		}
		v.leases = l6.Leases6()
		v.alloc, err = dhcp.NewAllocator6(context.Background(), dhcp.Allocator6Config{
			Prefix: cfg.Prefix, ServerIP: cfg.ServerIP, RangeStart: cfg.RangeStart, RangeEnd: cfg.RangeEnd,
			LeaseTime: s.cfg.LeaseTime, Store: v.leases, Reservations: reservations{s: s, v6: true}, Logger: s.log,
		})
		if err != nil {
			return nil, err
		}
	}
	v.srv, err = dhcp.New6(dhcp.Config6{Interface: s.cfg.Interface, Workers: s.cfg.DHCPWorkers,
		Handler: dhcp.Handler6Func(v.ServeDHCPv6), Registerer: reg, Logger: s.log})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// ServeDHCPv6 is the policy behind the DHCPv6 server, as ServeDHCP is for
// DHCPv4: known or discovered machines get, in full mode, an address
// (IA_NA) and in both modes, when they netboot, the boot file URL (option
// 59) that pxe.Policy chooses for their architecture (option 61); proxy
// mode answers netboot clients only, with boot options and no address.
func (v *service6) ServeDHCPv6(ctx context.Context, req *dhcp.Request6) (*dhcpv6.Message, error) {
	s := v.s
	msg := req.Message
	c := pxe.ParseClient6(msg, req.MAC)
	if v.cfg.Mode == ModeProxy && !c.Netboot() {
		return nil, nil
	}
	mac := req.MAC
	var m Machine
	var err error
	found := false
	if mac == nil && len(c.UUID) == 17 {
		// A DUID-UUID from a link-local address that is no EUI-64: the
		// machine may be known by its SMBIOS UUID.
		if m, err = s.inv.MachineByUUID(ctx, uuidString(c.UUID[1:])); err == nil && m.MAC != nil {
			mac, req.MAC, req.MACSource, c.MAC, found = m.MAC, m.MAC, "uuid", m.MAC, true
		}
	}
	if mac == nil {
		s.counters.WithLabelValues("unknown_mac6").Inc()
		s.log.Info("netboot: DHCPv6 client without a MAC (DUID, relay, EUI-64) ignored", "peer", req.Peer, "duid", msg.Options.ClientID())
		return nil, nil
	}
	if !found {
		m, err = s.inv.MachineByMAC(ctx, mac)
	}
	switch {
	case errors.Is(err, ErrNotFound) && s.cfg.Unknown == UnknownIgnore:
		s.counters.WithLabelValues("unknown_ignored").Inc()
		return nil, nil
	case errors.Is(err, ErrNotFound) && c.Netboot():
		h := Hints{VendorClass: c.VendorClass}
		if c.HasArch {
			h.Arch = strconv.Itoa(int(c.Arch))
		}
		if len(c.UUID) == 17 {
			h.UUID = uuidString(c.UUID[1:])
		}
		if m, err = s.inv.DiscoverMachine(ctx, mac, h); err != nil {
			return nil, fmt.Errorf("netboot: discover %s: %w", mac, err)
		}
		s.counters.WithLabelValues("discovered").Inc()
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("netboot: look up %s: %w", mac, err)
	}
	var boot pxe.Boot
	var bootErr error
	if c.Netboot() {
		p := s.policyFor(m) // the machine's own UEFI boot wins, as for DHCPv4
		p.AdvertiseURL = v.cfg.AdvertiseURL
		if boot, bootErr = p.Decide(c); bootErr != nil {
			s.counters.WithLabelValues("unsupported_arch").Inc()
			s.log.Info("netboot: no boot file for DHCPv6 client", "mac", mac.String(), "arch", c.Arch, "vendor", c.VendorClass, "err", bootErr)
		}
	}
	var resp *dhcpv6.Message
	switch v.cfg.Mode {
	case ModeProxy:
		switch msg.MessageType {
		case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeInformationRequest:
		default:
			return nil, nil
		}
		if bootErr != nil {
			return nil, nil
		}
		resp = dhcp.NewReply6(msg)
	case ModeFull:
		if resp, err = v.alloc.Handle(ctx, req); err != nil || resp == nil {
			return nil, err
		}
	default:
		return nil, nil
	}
	if len(v.cfg.DNS) > 0 {
		ips := make([]net.IP, len(v.cfg.DNS))
		for i, d := range v.cfg.DNS {
			ips[i] = d.AsSlice()
		}
		resp.UpdateOption(dhcpv6.OptDNS(ips...))
	}
	bootable := msg.MessageType != dhcpv6.MessageTypeRelease && msg.MessageType != dhcpv6.MessageTypeDecline
	fields := map[string]any{"family": 6, "vendor": c.VendorClass, "ipxe": c.IPXE, "mac_from": req.MACSource}
	if c.HasArch {
		fields["arch"] = int(c.Arch)
	}
	if ia := resp.Options.OneIANA(); ia != nil && ia.Options.OneAddress() != nil {
		ip, _ := netip.AddrFromSlice(ia.Options.OneAddress().IPv6Addr)
		fields["ip"] = ip.String()
		s.rememberIP(ip.AsSlice(), mac)
	}
	if req.Peer != nil {
		s.rememberIP(req.Peer.IP, mac)
	}
	if c.Netboot() && bootErr == nil && bootable {
		pxe.Apply6(resp, boot, v.cfg.ServerIP)
		fields["boot"] = pxe.BootURL6(boot, v.cfg.ServerIP)
		s.counters.WithLabelValues(string(boot.Kind)).Inc()
	}
	switch {
	case resp.MessageType == dhcpv6.MessageTypeAdvertise:
		s.event(ctx, mac, m.Name, EventDHCPOffer, fields)
	case msg.MessageType == dhcpv6.MessageTypeRequest || msg.MessageType == dhcpv6.MessageTypeRenew || msg.MessageType == dhcpv6.MessageTypeRebind:
		s.event(ctx, mac, m.Name, EventDHCPAck, fields)
	}
	return resp, nil
}

// fromMachine6 checks, in DHCPv6 full mode, that src (an IPv6 address) is
// the machine's reserved IPv6 address or the address leased to mac;
// without DHCPv6 full mode there is nothing to compare with.
func (v *service6) fromMachine6(ctx context.Context, mac net.HardwareAddr, reserved, src netip.Addr) (checked bool, err error) {
	if v == nil || v.cfg.Mode != ModeFull || mac == nil {
		return false, nil
	}
	if reserved.IsValid() && reserved == src {
		return true, nil
	}
	l, err := v.leases.Get(ctx, mac)
	if err == nil && l.IP == src && l.Expires.After(time.Now()) {
		return true, nil
	}
	held := "no DHCPv6 lease"
	switch {
	case reserved.IsValid():
		held = "reserved address " + reserved.String()
	case err == nil:
		held = "DHCPv6 lease " + l.IP.String()
	}
	return true, fmt.Errorf("boot script for %s asked from %s, which is not its address (%s)", mac, src, held)
}

// urlsFor is the advertise and agent URLs a boot script asked from src
// carries: over IPv6, with DHCPv6 on, iPXE fetches the kernel and initrd
// from the IPv6 advertise URL. The agent URL stays the one metald's jobs
// hand out (its image URLs are derived from it): with an IPv6 literal
// (IPv6-only metald) the agent does DHCPv6, with an IPv4 one (dual stack)
// DHCPv4, so it always reaches what its tasks name.
func (s *Service) urlsFor(src netip.Addr) (base, agent string) {
	base, agent = s.cfg.AdvertiseURL, s.cfg.AgentURL
	if s.v6 == nil || !src.Is6() || src.Is4In6() || s.v6.cfg.AdvertiseURL == "" {
		return base, agent
	}
	return s.v6.cfg.AdvertiseURL, agent
}
