package dhcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Reservation pins an address (and optionally a host name) to a MAC.
type Reservation struct {
	IP       netip.Addr // zero: no fixed address, take one from the pool
	Hostname string
}

// Reservations looks up the reservation for a MAC; ok=false if none.
type Reservations interface {
	Reservation(ctx context.Context, mac net.HardwareAddr) (r Reservation, ok bool, err error)
}

// AllocatorConfig configures full-mode address management for one subnet.
type AllocatorConfig struct {
	ServerIP   netip.Addr   // our address: option 54 (server identifier)
	Subnet     netip.Prefix // options 1 (mask) and 28 (broadcast)
	RangeStart netip.Addr   // dynamic pool, inclusive
	RangeEnd   netip.Addr
	LeaseTime  time.Duration // option 51; T1 (58) = 1/2, T2 (59) = 7/8
	Routers    []netip.Addr  // option 3
	DNS        []netip.Addr  // option 6
	Domain     string        // option 15
	Store      LeaseStore    // required
	// Reservations is optional; reserved addresses should lie outside the
	// pool range (inside it they are only protected once leased).
	Reservations Reservations
	OfferHold    time.Duration // how long an offered address is held (default 60 s)
	DeclineHold  time.Duration // how long a DECLINEd address is avoided (default 10 min)
	Now          func() time.Time
	Logger       *slog.Logger
}

// holdDefaults fills the zero timing fields both allocators share:
// offers held 60 s, declined addresses avoided 10 min, the clock, a
// logger that discards.
func holdDefaults(offer, decline *time.Duration, now *func() time.Time, log **slog.Logger) {
	if *offer == 0 {
		*offer = time.Minute
	}
	if *decline == 0 {
		*decline = 10 * time.Minute
	}
	if *now == nil {
		*now = time.Now
	}
	if *log == nil {
		*log = slog.New(slog.DiscardHandler)
	}
}

// withDefaults returns c with its zero fields filled.
func (c AllocatorConfig) withDefaults() AllocatorConfig {
	holdDefaults(&c.OfferHold, &c.DeclineHold, &c.Now, &c.Logger)
	return c
}

// Validate reports what is wrong with c; it changes nothing.
func (c AllocatorConfig) Validate() error {
	switch {
	case !c.Subnet.IsValid() || !c.Subnet.Addr().Is4():
		return errors.New("dhcp: allocator: subnet must be an IPv4 prefix")
	case !c.ServerIP.Is4() || !c.Subnet.Contains(c.ServerIP):
		return fmt.Errorf("dhcp: allocator: server IP %v not in subnet %v", c.ServerIP, c.Subnet)
	case !c.RangeStart.IsValid() && !c.RangeEnd.IsValid():
		// No pool: reservations only.
	case !c.RangeStart.Is4() || !c.RangeEnd.Is4() || c.RangeEnd.Less(c.RangeStart):
		return fmt.Errorf("dhcp: allocator: bad range %v-%v", c.RangeStart, c.RangeEnd)
	case !c.Subnet.Contains(c.RangeStart) || !c.Subnet.Contains(c.RangeEnd):
		return fmt.Errorf("dhcp: allocator: range %v-%v not inside subnet %v", c.RangeStart, c.RangeEnd, c.Subnet)
	case c.LeaseTime < time.Minute:
		return fmt.Errorf("dhcp: allocator: lease time %v shorter than 1m", c.LeaseTime)
	case c.Store == nil:
		return errors.New("dhcp: allocator: no lease store")
	}
	return nil
}

// Allocator answers DHCPDISCOVER/REQUEST/RELEASE/DECLINE/INFORM for one
// subnet following RFC 2131 §4.3. It indexes leases in memory and writes
// bound and released leases through to the LeaseStore; offers and declined
// addresses are kept in memory only. Every decision is taken under one
// mutex on the index; the store writes happen outside it, in decision
// order per MAC (persist.go), and an ACK leaves only once its lease is
// written.
type Allocator struct {
	cfg AllocatorConfig
	mu  sync.Mutex
	leaseIndex
	cursor  uint32
	stale   []write // deletions of persisted leases whose address was reused
	writers map[string]*macWriter
	seq     uint64 // of the last staged write
}

// NewAllocator validates cfg and loads the existing leases from the store.
func NewAllocator(ctx context.Context, cfg AllocatorConfig) (*Allocator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Allocator{cfg: cfg, leaseIndex: newLeaseIndex(), writers: map[string]*macWriter{}}
	leases, err := cfg.Store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("dhcp: allocator: load leases: %w", err)
	}
	for _, l := range leases {
		a.index(l)
	}
	if cfg.RangeStart.IsValid() {
		a.cursor = ip4u(cfg.RangeStart)
	}
	return a, nil
}

func ip4u(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }
func u4ip(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}

func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

// index records l; a persisted lease of another MAC whose address l
// takes over is deleted from the store on the next flushStale (staged
// now, so that the deletion keeps its place among that MAC's writes).
func (a *Allocator) index(l Lease) {
	if old, ok := a.put(l); ok && old.State != LeaseOffered {
		a.stale = append(a.stale, a.stage(old.MAC, Lease{}, true))
	}
}

func (a *Allocator) inRange(ip netip.Addr) bool {
	return a.cfg.RangeStart.IsValid() && ip.Is4() && !ip.Less(a.cfg.RangeStart) && !a.cfg.RangeEnd.Less(ip)
}

// free reports whether ip may be given to mac: not ours, not the subnet's
// network or broadcast address, not recently declined, and not held by a
// live lease of another MAC.
func (a *Allocator) free(ip netip.Addr, mac string, now time.Time) bool {
	if !a.cfg.Subnet.Contains(ip) || ip == a.cfg.ServerIP || ip == a.cfg.Subnet.Masked().Addr() || ip == broadcastOf(a.cfg.Subnet) {
		return false
	}
	return a.unheld(ip, mac, now)
}

func broadcastOf(p netip.Prefix) netip.Addr {
	u := ip4u(p.Masked().Addr()) | (^uint32(0) >> p.Bits())
	return u4ip(u)
}

// choose picks the address to offer: reservation, then the MAC's previous
// address, then the requested address, then the next free pool address.
func (a *Allocator) choose(mac string, res Reservation, hasRes bool, requested netip.Addr, now time.Time) (netip.Addr, bool) {
	if hasRes && res.IP.IsValid() {
		return res.IP, true
	}
	if l, ok := a.byMAC[mac]; ok && a.inRange(l.IP) && a.free(l.IP, mac, now) {
		return l.IP, true
	}
	if requested.IsValid() && a.inRange(requested) && a.free(requested, mac, now) {
		return requested, true
	}
	if !a.cfg.RangeStart.IsValid() {
		return netip.Addr{}, false // reservations only
	}
	start, end := ip4u(a.cfg.RangeStart), ip4u(a.cfg.RangeEnd)
	n := end - start + 1
	for i := uint32(0); i < n; i++ {
		u := a.cursor
		a.cursor++
		if a.cursor > end || a.cursor < start {
			a.cursor = start
		}
		if ip := u4ip(u); a.free(ip, mac, now) {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// acceptable reports whether mac may use ip (REQUEST in any state).
func (a *Allocator) acceptable(mac string, ip netip.Addr, res Reservation, hasRes bool, now time.Time) bool {
	if hasRes && res.IP.IsValid() {
		return ip == res.IP
	}
	return a.inRange(ip) && a.free(ip, mac, now)
}

var netipZero netip.Addr

func ips(as []netip.Addr) []net.IP {
	out := make([]net.IP, len(as))
	for i, a := range as {
		out[i] = a.AsSlice()
	}
	return out
}
