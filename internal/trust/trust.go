// Package trust decides whether a request from the provisioning network
// comes from the machine it speaks for. A machine speaks from the address
// metald reserved for it (its --ip) or leased to one of its MACs; any
// other host on the network is a stranger, however well it knows the
// machine's name or MAC. The policy lives here only: metadata (and the
// agent API) ask, and record what they refuse.
package trust

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// ErrForeign means the request came from an address that is not the
// machine's.
var ErrForeign = errors.New("request from another address than the machine's")

// Store is what trust needs from the inventory.
type Store interface {
	GetLease(ctx context.Context, mac string) (inventory.Lease, error)
	GetLease6(ctx context.Context, mac string) (inventory.Lease, error)
	LeaseByIP(ctx context.Context, ip string) (inventory.Lease, error)
	MachineByMAC(ctx context.Context, mac string) (inventory.Machine, error)
	ListMachines(ctx context.Context, f inventory.MachineFilter) ([]inventory.Machine, error)
}

// Binder binds machines to their addresses.
type Binder struct {
	store Store
	now   func() time.Time
}

// New returns a Binder over store.
func New(store Store) *Binder { return &Binder{store: store, now: time.Now} }

// Source is a request's peer address (never X-Forwarded-For: a host on
// the provisioning network writes what it likes there).
func Source(remoteAddr string) netip.Addr {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// Addresses are the addresses m may speak from: its IPv4 and IPv6
// reservations, and the unexpired DHCPv4 and DHCPv6 leases of its MACs.
func (b *Binder) Addresses(ctx context.Context, m inventory.Machine) []netip.Addr {
	out := reserved(m)
	for _, mac := range m.MACs {
		for _, get := range []func(context.Context, string) (inventory.Lease, error){b.store.GetLease, b.store.GetLease6} {
			l, err := get(ctx, mac)
			if err != nil || !l.ExpiresAt.After(b.now()) {
				continue
			}
			if a, err := netip.ParseAddr(l.IP); err == nil && !contains(out, a.Unmap()) {
				out = append(out, a.Unmap())
			}
		}
	}
	return out
}

// Check returns nil when src is one of m's addresses, else an error
// wrapping ErrForeign that names both.
func (b *Binder) Check(ctx context.Context, m inventory.Machine, src netip.Addr) error {
	addrs := b.Addresses(ctx, m)
	if contains(addrs, src) {
		return nil
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%w: %s asked for machine %s, which has no reserved address and no lease", ErrForeign, src, m.Name)
	}
	return fmt.Errorf("%w: %s asked for machine %s, which is at %s", ErrForeign, src, m.Name, join(addrs))
}

// MachineAt finds the machine at src: a reservation first, then a live
// lease of one of a machine's MACs.
func (b *Binder) MachineAt(ctx context.Context, src netip.Addr) (inventory.Machine, error) {
	ms, err := b.store.ListMachines(ctx, inventory.MachineFilter{})
	if err != nil {
		return inventory.Machine{}, err
	}
	for _, m := range ms {
		if contains(reserved(m), src) {
			return m, nil
		}
	}
	if l, err := b.store.LeaseByIP(ctx, src.String()); err == nil && l.ExpiresAt.After(b.now()) {
		return b.store.MachineByMAC(ctx, l.MAC)
	}
	return inventory.Machine{}, fmt.Errorf("%w: no machine is known at %s", inventory.ErrNotFound, src)
}

// reserved are m's reserved addresses (IPv4, IPv6), unmapped.
func reserved(m inventory.Machine) []netip.Addr {
	var out []netip.Addr
	for _, s := range []string{m.IP, m.IP6} {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func contains(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func join(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// Throttle lets one report per key through per interval, so that a
// flood of refused requests costs one event a minute rather than one a
// request. It holds at most max keys.
type Throttle struct {
	mu    sync.Mutex
	every time.Duration
	max   int
	last  map[string]time.Time
	now   func() time.Time
}

// NewThrottle returns a throttle; every 0 means a minute.
func NewThrottle(every time.Duration) *Throttle {
	if every == 0 {
		every = time.Minute
	}
	return &Throttle{every: every, max: 4096, last: map[string]time.Time{}, now: time.Now}
}

// Allow reports whether key may be reported now.
func (t *Throttle) Allow(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if last, ok := t.last[key]; ok && now.Sub(last) < t.every {
		return false
	}
	if len(t.last) >= t.max {
		for k, v := range t.last {
			if now.Sub(v) >= t.every {
				delete(t.last, k)
			}
		}
		if len(t.last) >= t.max {
			return false
		}
	}
	t.last[key] = now
	return true
}
