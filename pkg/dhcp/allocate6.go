package dhcp

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// Handle answers req's IA_NA in full mode (RFC 8415 §18.3): it returns
// the Advertise or Reply started by NewReply6, holding the IA_NA with its
// address or a status, to which the caller adds what it likes (boot
// options). A client whose MAC is unknown (req.MAC nil) gets no address:
// leases are kept per MAC. It returns nil only for message types it does
// not answer.
func (a *Allocator6) Handle(ctx context.Context, req *Request6) (*dhcpv6.Message, error) {
	msg := req.Message
	reply := NewReply6(msg)
	if msg.MessageType == dhcpv6.MessageTypeInformationRequest {
		return reply, nil
	}
	if msg.MessageType == dhcpv6.MessageTypeConfirm {
		return reply, a.confirm(msg, reply)
	}
	ia := msg.Options.OneIANA()
	if ia == nil {
		if msg.MessageType == dhcpv6.MessageTypeSolicit || msg.MessageType == dhcpv6.MessageTypeRequest {
			return reply, nil // stateless client: options only
		}
		reply.AddOption(status6(iana.StatusNoBinding, "no IA_NA"))
		return reply, nil
	}
	if req.MAC == nil {
		reply.AddOption(iaStatus(ia, iana.StatusNoAddrsAvail, "client hardware address unknown (no DUID-LL/LLT, relay or EUI-64 link-local)"))
		return reply, nil
	}
	res, host, err := a.reservation(ctx, req.MAC)
	if err != nil {
		return nil, fmt.Errorf("dhcp6: reservation for %s: %w", req.MAC, err)
	}
	var hint netip.Addr
	if ad := ia.Options.OneAddress(); ad != nil {
		hint, _ = netip.AddrFromSlice(ad.IPv6Addr)
	}
	mac := req.MAC.String()
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	switch msg.MessageType {
	case dhcpv6.MessageTypeSolicit:
		ip, ok := a.choose(mac, res, hint, now)
		if !ok {
			a.cfg.Logger.Warn("dhcp6: pool exhausted", "mac", mac)
			reply.AddOption(iaStatus(ia, iana.StatusNoAddrsAvail, "no address available"))
			return reply, nil
		}
		if l, ok := a.byMAC[mac]; !ok || l.State != LeaseBound || l.IP != ip {
			a.index(Lease{MAC: req.MAC, IP: ip, Hostname: host, Expires: now.Add(a.cfg.OfferHold), State: LeaseOffered})
		}
		reply.AddOption(a.iaWith(ia, ip, a.cfg.LeaseTime))
		return reply, nil
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind:
		ip := hint
		switch {
		case res.IsValid():
			ip = res
		case !ip.IsValid() || !a.inRange(ip) || !a.free(ip, mac, now):
			if msg.MessageType != dhcpv6.MessageTypeRequest {
				if ip.IsValid() && !a.cfg.Prefix.Contains(ip) {
					// RFC 8415 §18.3.5: not appropriate for the link.
					reply.AddOption(a.iaWith(ia, ip, 0))
					return reply, nil
				}
				reply.AddOption(iaStatus(ia, iana.StatusNoBinding, "no binding for this address"))
				return reply, nil
			}
			var ok bool
			if ip, ok = a.choose(mac, res, netip.Addr{}, now); !ok {
				reply.AddOption(iaStatus(ia, iana.StatusNoAddrsAvail, "no address available"))
				return reply, nil
			}
		}
		l := Lease{MAC: req.MAC, IP: ip, Hostname: host, Expires: now.Add(a.cfg.LeaseTime), State: LeaseBound}
		if err := a.cfg.Store.Put(ctx, l); err != nil {
			return nil, fmt.Errorf("dhcp6: store lease of %s: %w", mac, err)
		}
		a.index(l)
		out := a.iaWith(ia, ip, a.cfg.LeaseTime)
		if hint.IsValid() && hint != ip && a.cfg.Prefix.Contains(hint) {
			// The client holds another address (from the pool, before its
			// machine was given a reservation): tell it to stop using it
			// (RFC 8415 §18.3.4, lifetimes 0).
			out.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: hint.AsSlice()})
		}
		reply.AddOption(out)
		return reply, nil
	case dhcpv6.MessageTypeRelease:
		if l, ok := a.byMAC[mac]; ok && l.IP == hint && l.State == LeaseBound {
			l.State, l.Expires = LeaseReleased, now
			if err := a.cfg.Store.Put(ctx, l); err != nil {
				return nil, fmt.Errorf("dhcp6: store release of %s: %w", mac, err)
			}
			a.index(l)
		}
		reply.AddOption(status6(iana.StatusSuccess, "released"))
		return reply, nil
	case dhcpv6.MessageTypeDecline:
		if hint.IsValid() {
			a.decline[hint] = now.Add(a.cfg.DeclineHold)
			a.cfg.Logger.Warn("dhcp6: address declined", "mac", mac, "ip", hint)
			if l, ok := a.byMAC[mac]; ok && l.IP == hint {
				a.unindex(mac)
				if err := a.cfg.Store.Delete(ctx, req.MAC); err != nil {
					return nil, fmt.Errorf("dhcp6: delete declined lease of %s: %w", mac, err)
				}
			}
		}
		reply.AddOption(status6(iana.StatusSuccess, "declined"))
		return reply, nil
	}
	return nil, nil
}

// confirm answers whether the client's addresses are on our link.
func (a *Allocator6) confirm(msg *dhcpv6.Message, reply *dhcpv6.Message) error {
	for _, ia := range msg.Options.IANA() {
		for _, ad := range ia.Options.Addresses() {
			ip, _ := netip.AddrFromSlice(ad.IPv6Addr)
			if !a.cfg.Prefix.Contains(ip) {
				reply.AddOption(status6(iana.StatusNotOnLink, "address not on this link"))
				return nil
			}
		}
	}
	reply.AddOption(status6(iana.StatusSuccess, "on link"))
	return nil
}

// iaWith is the client's IA_NA holding ip with lifetime lt (0: "stop
// using it").
func (a *Allocator6) iaWith(req *dhcpv6.OptIANA, ip netip.Addr, lt time.Duration) *dhcpv6.OptIANA {
	ia := &dhcpv6.OptIANA{IaId: req.IaId, T1: lt / 2, T2: lt * 4 / 5}
	ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: ip.AsSlice(), PreferredLifetime: lt, ValidLifetime: lt})
	return ia
}

func iaStatus(req *dhcpv6.OptIANA, code iana.StatusCode, msg string) *dhcpv6.OptIANA {
	ia := &dhcpv6.OptIANA{IaId: req.IaId}
	ia.Options.Add(status6(code, msg))
	return ia
}

func status6(code iana.StatusCode, msg string) *dhcpv6.OptStatusCode {
	return &dhcpv6.OptStatusCode{StatusCode: code, StatusMessage: msg}
}
