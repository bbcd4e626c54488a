package netboot

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/metal-iaas/metal/pkg/dhcp"
	"github.com/metal-iaas/metal/pkg/pxe"
)

// ServeDHCP is the policy behind the DHCP server (dhcp.Handler):
//
//   - known MAC, or unknown MAC with Unknown=discover (netboot clients are
//     then created in state "discovered"): full mode answers with an
//     address (reservation or pool) plus, for PXE/HTTP/iPXE clients, the
//     boot file pxe.Policy chooses; proxy mode answers PXE/HTTP/iPXE clients
//     only, with boot options and no address.
//   - unknown MAC with Unknown=ignore: no answer at all.
//   - unsupported architectures (arm64): proxy mode stays silent, full mode
//     gives the address without a boot file; both are counted.
func (s *Service) ServeDHCP(ctx context.Context, req *dhcp.Request) (*dhcpv4.DHCPv4, error) {
	p := req.Packet
	c := pxe.ParseClient(p)
	if s.cfg.Mode == ModeProxy && !c.Netboot() {
		return nil, nil
	}
	m, err := s.inv.MachineByMAC(ctx, p.ClientHWAddr)
	switch {
	case errors.Is(err, ErrNotFound) && s.cfg.Unknown == UnknownIgnore:
		s.counters.WithLabelValues("unknown_ignored").Inc()
		return nil, nil
	case errors.Is(err, ErrNotFound) && c.Netboot():
		if m, err = s.inv.DiscoverMachine(ctx, p.ClientHWAddr, hints(p, c)); err != nil {
			return nil, fmt.Errorf("netboot: discover %s: %w", p.ClientHWAddr, err)
		}
		s.counters.WithLabelValues("discovered").Inc()
	case errors.Is(err, ErrNotFound):
		// Unknown non-netboot client in discover mode: address only.
	case err != nil:
		return nil, fmt.Errorf("netboot: look up %s: %w", p.ClientHWAddr, err)
	}

	var resp *dhcpv4.DHCPv4
	var boot pxe.Boot
	var bootErr error
	if c.Netboot() {
		boot, bootErr = s.policyFor(m).Decide(c)
		if bootErr != nil {
			s.counters.WithLabelValues("unsupported_arch").Inc()
			s.log.Info("netboot: no boot file for client", "mac", p.ClientHWAddr.String(), "arch", c.Arch, "vendor", c.VendorClass, "err", bootErr)
		}
	}
	switch s.cfg.Mode {
	case ModeProxy:
		if bootErr != nil {
			return nil, nil
		}
		if resp, err = pxe.ProxyReply(p, req.LocalPort, s.cfg.ServerIP.AsSlice(), c, boot); err != nil || resp == nil {
			return nil, err
		}
		if req.LocalPort == dhcp.ProxyPort {
			s.rememberIP(p.ClientIPAddr, p.ClientHWAddr)
			if req.Peer != nil {
				s.rememberIP(req.Peer.IP, p.ClientHWAddr)
			}
		}
	case ModeFull:
		if resp, err = s.alloc.Handle(ctx, p); err != nil || resp == nil {
			return nil, err
		}
		t := resp.MessageType()
		if c.Netboot() && bootErr == nil && (t == dhcpv4.MessageTypeOffer || t == dhcpv4.MessageTypeAck) {
			pxe.Apply(resp, boot, s.cfg.ServerIP.AsSlice())
		}
		s.rememberIP(resp.YourIPAddr, p.ClientHWAddr)
	default:
		return nil, nil
	}
	fields := map[string]any{"ip": resp.YourIPAddr.String(), "vendor": c.VendorClass, "ipxe": c.IPXE, "port": req.LocalPort}
	if c.HasArch {
		fields["arch"] = int(c.Arch)
	}
	if resp.BootFileName != "" {
		fields["boot"] = resp.BootFileName
		s.counters.WithLabelValues(string(boot.Kind)).Inc()
	} else if c.Netboot() || s.cfg.Mode == ModeFull {
		s.counters.WithLabelValues("address_only").Inc()
	}
	switch resp.MessageType() {
	case dhcpv4.MessageTypeOffer:
		s.event(ctx, p.ClientHWAddr, m.Name, EventDHCPOffer, fields)
	case dhcpv4.MessageTypeAck:
		s.event(ctx, p.ClientHWAddr, m.Name, EventDHCPAck, fields)
	}
	return resp, nil
}

func hints(p *dhcpv4.DHCPv4, c pxe.Client) Hints {
	h := Hints{VendorClass: c.VendorClass, Hostname: p.HostName()}
	if c.HasArch {
		h.Arch = strconv.Itoa(int(c.Arch))
	}
	if len(c.UUID) == 17 && c.UUID[0] == 0 { // RFC 4578 §2.5: type 0 + 16-byte GUID
		h.UUID = uuidString(c.UUID[1:])
	}
	return h
}

func uuidString(b []byte) string {
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
