package dhcp

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Handle answers one request in full mode. It returns nil when RFC 2131
// says to stay silent (another server selected, RELEASE, DECLINE, unknown
// INIT-REBOOT client, pool exhausted). Relayed requests are answered only
// when giaddr lies in the configured subnet.
func (a *Allocator) Handle(ctx context.Context, req *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, error) {
	if gi := addrOf(req.GatewayIPAddr); gi.IsValid() && !a.cfg.Subnet.Contains(gi) {
		return nil, nil
	}
	mac := req.ClientHWAddr.String()
	var res Reservation
	var hasRes bool
	if a.cfg.Reservations != nil {
		var err error
		res, hasRes, err = a.cfg.Reservations.Reservation(ctx, req.ClientHWAddr)
		if err != nil {
			return nil, fmt.Errorf("dhcp: reservation for %s: %w", mac, err)
		}
		if hasRes && res.IP.IsValid() && !a.cfg.Subnet.Contains(res.IP) {
			a.cfg.Logger.Warn("dhcp: reservation outside subnet ignored", "mac", mac, "ip", res.IP, "subnet", a.cfg.Subnet)
			res.IP = netipZero
		}
	}
	now := a.cfg.Now()
	// Decide under the lock, write outside it: a slow store delays only
	// the client whose lease it writes (and later writes of that MAC).
	a.mu.Lock()
	d, err := a.decide(req, mac, res, hasRes, now)
	a.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if d.write != nil {
		if err := a.commit(ctx, *d.write, true); err != nil {
			return nil, fmt.Errorf("dhcp: store %s of %s: %w", d.what, mac, err)
		}
	}
	if d.flush {
		if err := a.flushStale(ctx); err != nil {
			return nil, err
		}
	}
	return d.reply, nil
}

// decision is what Handle answers and what it must write first.
type decision struct {
	reply *dhcpv4.DHCPv4
	write *write // the client's own lease record, written before replying
	what  string // lease, release or decline (for errors)
	flush bool   // then delete the records of MACs whose address was reused
}

// decide answers a request from the in-memory index; a.mu is held.
func (a *Allocator) decide(req *dhcpv4.DHCPv4, mac string, res Reservation, hasRes bool, now time.Time) (decision, error) {
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		ip, ok := a.choose(mac, res, hasRes, addrOf(req.RequestedIPAddress()), now)
		if !ok {
			a.cfg.Logger.Warn("dhcp: pool exhausted", "mac", mac)
			return decision{}, nil
		}
		host := hostname(req, res)
		if l, ok := a.byMAC[mac]; !ok || l.State != LeaseBound || l.IP != ip {
			a.index(Lease{MAC: req.ClientHWAddr, IP: ip, Hostname: host, Expires: now.Add(a.cfg.OfferHold), State: LeaseOffered})
		}
		reply, err := a.reply(req, dhcpv4.MessageTypeOffer, ip.AsSlice(), host, true)
		return decision{reply: reply, flush: true}, err
	case dhcpv4.MessageTypeRequest:
		return a.request(req, mac, res, hasRes, now)
	case dhcpv4.MessageTypeRelease:
		if l, ok := a.byMAC[mac]; ok && l.IP == addrOf(req.ClientIPAddr) {
			l.State, l.Expires = LeaseReleased, now
			a.index(l)
			w := a.stage(l.MAC, l, false)
			return decision{write: &w, what: "release"}, nil
		}
		return decision{}, nil
	case dhcpv4.MessageTypeDecline:
		ip := addrOf(req.RequestedIPAddress())
		if !ip.IsValid() {
			return decision{}, nil
		}
		a.decline[ip] = now.Add(a.cfg.DeclineHold)
		a.cfg.Logger.Warn("dhcp: address declined", "mac", mac, "ip", ip)
		if l, ok := a.byMAC[mac]; ok && l.IP == ip {
			a.unindex(mac)
			w := a.stage(req.ClientHWAddr, Lease{}, true)
			return decision{write: &w, what: "decline"}, nil
		}
		return decision{}, nil
	case dhcpv4.MessageTypeInform:
		reply, err := a.reply(req, dhcpv4.MessageTypeAck, nil, "", false)
		return decision{reply: reply}, err
	}
	return decision{}, nil
}

func (a *Allocator) request(req *dhcpv4.DHCPv4, mac string, res Reservation, hasRes bool, now time.Time) (decision, error) {
	nak := func(why string) (decision, error) {
		reply, err := a.nak(req, why)
		return decision{reply: reply}, err
	}
	sid := addrOf(req.ServerIdentifier())
	requested := addrOf(req.RequestedIPAddress())
	ciaddr := addrOf(req.ClientIPAddr)
	var ip = requested
	switch {
	case sid.IsValid(): // SELECTING
		if sid != a.cfg.ServerIP {
			if l, ok := a.byMAC[mac]; ok && l.State == LeaseOffered {
				a.unindex(mac)
			}
			return decision{}, nil
		}
	case requested.IsValid(): // INIT-REBOOT
		if !a.cfg.Subnet.Contains(requested) {
			return nak("requested address not on this network")
		}
		if _, known := a.byMAC[mac]; !known && !hasRes && !a.inRange(requested) {
			return decision{}, nil // RFC 2131 §4.3.2: no record of the client → silent
		}
	case ciaddr.IsValid(): // RENEWING or REBINDING
		ip = ciaddr
	default:
		return nak("no requested address")
	}
	if !ip.IsValid() || !a.acceptable(mac, ip, res, hasRes, now) {
		return nak("address not available")
	}
	host := hostname(req, res)
	l := Lease{MAC: req.ClientHWAddr, IP: ip, Hostname: host, Expires: now.Add(a.cfg.LeaseTime), State: LeaseBound}
	a.index(l)
	w := a.stage(l.MAC, l, false)
	reply, err := a.reply(req, dhcpv4.MessageTypeAck, ip.AsSlice(), host, true)
	return decision{reply: reply, write: &w, what: "lease", flush: true}, err
}

func hostname(req *dhcpv4.DHCPv4, res Reservation) string {
	if res.Hostname != "" {
		return res.Hostname
	}
	return req.HostName()
}

func (a *Allocator) nak(req *dhcpv4.DHCPv4, why string) (*dhcpv4.DHCPv4, error) {
	return NewReply(req,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(a.cfg.ServerIP.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptMessage(why)),
	), nil
}

// reply builds an OFFER or ACK carrying options 1, 3, 6, 15, 28 and 54,
// plus 51/58/59 (and 12 if a host name is known) when withLease is set.
func (a *Allocator) reply(req *dhcpv4.DHCPv4, t dhcpv4.MessageType, yiaddr net.IP, host string, withLease bool) (*dhcpv4.DHCPv4, error) {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(t),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(a.cfg.ServerIP.AsSlice())),
		dhcpv4.WithNetmask(net.CIDRMask(a.cfg.Subnet.Bits(), 32)),
		dhcpv4.WithOption(dhcpv4.OptBroadcastAddress(broadcastOf(a.cfg.Subnet).AsSlice())),
	}
	if yiaddr != nil {
		mods = append(mods, dhcpv4.WithYourIP(yiaddr))
	} else {
		mods = append(mods, dhcpv4.WithClientIP(req.ClientIPAddr))
	}
	if len(a.cfg.Routers) > 0 {
		mods = append(mods, dhcpv4.WithRouter(ips(a.cfg.Routers)...))
	}
	if len(a.cfg.DNS) > 0 {
		mods = append(mods, dhcpv4.WithDNS(ips(a.cfg.DNS)...))
	}
	if a.cfg.Domain != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDomainName(a.cfg.Domain)))
	}
	if withLease {
		lt := a.cfg.LeaseTime
		mods = append(mods,
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(lt)),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(lt/2)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(lt*7/8)),
		)
		if host != "" {
			mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(host)))
		}
	}
	return NewReply(req, mods...), nil
}
