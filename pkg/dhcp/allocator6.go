package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Allocator6Config configures stateful DHCPv6 address management (IA_NA)
// for one on-link prefix.
type Allocator6Config struct {
	Prefix     netip.Prefix // on-link prefix (the router advertises it; addresses lie in it)
	ServerIP   netip.Addr   // our address, never handed out (the prefix may be a relay's link without it)
	RangeStart netip.Addr   // dynamic pool, inclusive; both zero: reservations only
	RangeEnd   netip.Addr
	LeaseTime  time.Duration // valid and preferred lifetime; T1 = 1/2, T2 = 4/5
	Store      LeaseStore    // the v6 leases, one per MAC; required
	// Reservations is optional; a reservation's IPv6 address inside
	// Prefix is the client's address (an IPv4 reservation is ignored).
	Reservations Reservations
	OfferHold    time.Duration // how long an advertised address is held (default 60 s)
	DeclineHold  time.Duration // how long a declined address is avoided (default 10 min)
	Now          func() time.Time
	Logger       *slog.Logger
}

func (c Allocator6Config) withDefaults() Allocator6Config {
	holdDefaults(&c.OfferHold, &c.DeclineHold, &c.Now, &c.Logger)
	return c
}

// Validate reports what is wrong with c; it changes nothing.
func (c Allocator6Config) Validate() error {
	switch {
	case !c.Prefix.IsValid() || !c.Prefix.Addr().Is6() || c.Prefix.Addr().Is4In6():
		return errors.New("dhcp6: allocator: prefix must be an IPv6 prefix")
	case !c.RangeStart.IsValid() && !c.RangeEnd.IsValid():
	case !c.Prefix.Contains(c.RangeStart) || !c.Prefix.Contains(c.RangeEnd) || c.RangeEnd.Less(c.RangeStart):
		return fmt.Errorf("dhcp6: allocator: range %v-%v: want start <= end, both inside %v", c.RangeStart, c.RangeEnd, c.Prefix)
	}
	switch {
	case c.LeaseTime < time.Minute:
		return fmt.Errorf("dhcp6: allocator: lease time %v shorter than 1m", c.LeaseTime)
	case c.Store == nil:
		return errors.New("dhcp6: allocator: no lease store")
	}
	return nil
}

// Allocator6 answers IA_NA requests (RFC 8415 §18.3) for one prefix: one
// address per client MAC, reservations first, then the client's previous
// address, then the pool. Bound and released leases are written through
// to the LeaseStore under the allocator's lock (DHCPv6 clients on a
// provisioning network are firmware, iPXE and agents: a handful per
// machine boot, not a DHCPv4 storm); advertised and declined addresses
// are kept in memory only.
type Allocator6 struct {
	cfg Allocator6Config
	mu  sync.Mutex
	leaseIndex
	cursor netip.Addr
}

// NewAllocator6 validates cfg and loads the existing leases.
func NewAllocator6(ctx context.Context, cfg Allocator6Config) (*Allocator6, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Allocator6{cfg: cfg, leaseIndex: newLeaseIndex(), cursor: cfg.RangeStart}
	leases, err := cfg.Store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("dhcp6: allocator: load leases: %w", err)
	}
	for _, l := range leases {
		if l.IP.Is6() && cfg.Prefix.Contains(l.IP) {
			a.index(l)
		}
	}
	return a, nil
}

// Prefix is the allocator's prefix.
func (a *Allocator6) Prefix() netip.Prefix { return a.cfg.Prefix }

func (a *Allocator6) index(l Lease) { a.put(l) }

func (a *Allocator6) inRange(ip netip.Addr) bool {
	return a.cfg.RangeStart.IsValid() && ip.Is6() && !ip.Less(a.cfg.RangeStart) && !a.cfg.RangeEnd.Less(ip)
}

// free reports whether ip may be given to mac now.
func (a *Allocator6) free(ip netip.Addr, mac string, now time.Time) bool {
	if !a.cfg.Prefix.Contains(ip) || ip == a.cfg.ServerIP || ip == a.cfg.Prefix.Masked().Addr() {
		return false
	}
	return a.unheld(ip, mac, now)
}

// maxScan6 bounds one pool search: a /64 range is not walked end to end.
const maxScan6 = 1 << 16

// choose picks the address for mac: reservation, previous address, the
// address the client asks for, then the next free pool address.
func (a *Allocator6) choose(mac string, res netip.Addr, hint netip.Addr, now time.Time) (netip.Addr, bool) {
	if res.IsValid() {
		return res, true
	}
	if l, ok := a.byMAC[mac]; ok && a.inRange(l.IP) && a.free(l.IP, mac, now) {
		return l.IP, true
	}
	if hint.IsValid() && a.inRange(hint) && a.free(hint, mac, now) {
		return hint, true
	}
	if !a.cfg.RangeStart.IsValid() {
		return netip.Addr{}, false
	}
	for range maxScan6 {
		ip := a.cursor
		a.cursor = ip.Next()
		if !a.cursor.IsValid() || a.cfg.RangeEnd.Less(a.cursor) {
			a.cursor = a.cfg.RangeStart
		}
		if a.free(ip, mac, now) {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// reservation returns mac's reserved IPv6 address in the prefix, if any.
func (a *Allocator6) reservation(ctx context.Context, mac net.HardwareAddr) (netip.Addr, string, error) {
	if a.cfg.Reservations == nil {
		return netip.Addr{}, "", nil
	}
	r, ok, err := a.cfg.Reservations.Reservation(ctx, mac)
	if err != nil || !ok {
		return netip.Addr{}, "", err
	}
	if r.IP.Is6() && a.cfg.Prefix.Contains(r.IP) {
		return r.IP, r.Hostname, nil
	}
	if r.IP.IsValid() {
		a.cfg.Logger.Warn("dhcp6: reservation outside prefix ignored", "mac", mac, "ip", r.IP, "prefix", a.cfg.Prefix)
	}
	return netip.Addr{}, r.Hostname, nil
}

// Leased returns the live bound lease of mac, if any.
func (a *Allocator6) Leased(mac net.HardwareAddr) (Lease, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.byMAC[mac.String()]
	if !ok || l.State != LeaseBound || a.cfg.Now().After(l.Expires) {
		return Lease{}, false
	}
	return l, true
}
