package dhcp

import (
	"net/netip"
	"time"
)

// leaseIndex is an allocator's in-memory view of its leases, shared by
// the DHCPv4 and DHCPv6 allocators: each MAC's lease, which MAC holds
// each address, and the addresses recently declined. The allocator's
// mutex guards it.
type leaseIndex struct {
	byMAC   map[string]Lease
	byIP    map[netip.Addr]string // address → MAC
	decline map[netip.Addr]time.Time
}

func newLeaseIndex() leaseIndex {
	return leaseIndex{byMAC: map[string]Lease{}, byIP: map[netip.Addr]string{}, decline: map[netip.Addr]time.Time{}}
}

// put records l as its MAC's lease, freeing the MAC's previous address.
// An address taken over from another MAC (its offer or lease ran out)
// ends that MAC's record, so the index stays bounded by the number of
// addresses; put returns that record (ok false when there is none).
func (x *leaseIndex) put(l Lease) (taken Lease, ok bool) {
	key := l.MAC.String()
	if old, had := x.byMAC[key]; had && old.IP != l.IP && x.byIP[old.IP] == key {
		delete(x.byIP, old.IP)
	}
	if l.IP.IsValid() {
		if prev, held := x.byIP[l.IP]; held && prev != key {
			taken, ok = x.byMAC[prev]
			delete(x.byMAC, prev)
		}
		x.byIP[l.IP] = key
	}
	x.byMAC[key] = l
	return taken, ok
}

// unindex forgets mac's lease.
func (x *leaseIndex) unindex(mac string) {
	if old, ok := x.byMAC[mac]; ok && x.byIP[old.IP] == mac {
		delete(x.byIP, old.IP)
	}
	delete(x.byMAC, mac)
}

// unheld reports whether ip is neither recently declined nor held by a
// live lease of another MAC than mac: released and expired addresses may
// be reused; bound ones stay sticky to their MAC until they expire.
func (x *leaseIndex) unheld(ip netip.Addr, mac string, now time.Time) bool {
	if until, ok := x.decline[ip]; ok {
		if now.Before(until) {
			return false
		}
		delete(x.decline, ip)
	}
	owner, ok := x.byIP[ip]
	if !ok || owner == mac {
		return true
	}
	other := x.byMAC[owner]
	return other.State == LeaseReleased || now.After(other.Expires)
}
