package dhcp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// ErrNotFound is returned by a LeaseStore that has no lease for a MAC.
var ErrNotFound = errors.New("dhcp: not found")

// LeaseState is where a lease is in its life.
type LeaseState string

// Lease states.
const (
	LeaseOffered  LeaseState = "offered"  // kept in memory only
	LeaseBound    LeaseState = "bound"    // ACKed
	LeaseReleased LeaseState = "released" // client sent DHCPRELEASE; address sticks to the MAC
)

// Lease binds an address to a client hardware address.
type Lease struct {
	MAC      net.HardwareAddr
	IP       netip.Addr
	Hostname string
	Expires  time.Time
	State    LeaseState
}

// LeaseStore persists leases, one per MAC. The consumer (metald) backs it
// with its inventory; MemoryStore serves tests and the benchmark daemon.
type LeaseStore interface {
	Get(ctx context.Context, mac net.HardwareAddr) (Lease, error) // ErrNotFound if none
	Put(ctx context.Context, l Lease) error
	Delete(ctx context.Context, mac net.HardwareAddr) error
	List(ctx context.Context) ([]Lease, error)
}

// MemoryStore is an in-memory LeaseStore.
type MemoryStore struct {
	mu     sync.Mutex
	leases map[string]Lease
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{leases: map[string]Lease{}} }

// Get returns the lease for mac or ErrNotFound.
func (m *MemoryStore) Get(_ context.Context, mac net.HardwareAddr) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.leases[mac.String()]
	if !ok {
		return Lease{}, ErrNotFound
	}
	return l, nil
}

// Put stores l, replacing any lease for the same MAC.
func (m *MemoryStore) Put(_ context.Context, l Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l.MAC = slices.Clone(l.MAC)
	m.leases[l.MAC.String()] = l
	return nil
}

// Delete removes the lease for mac, if any.
func (m *MemoryStore) Delete(_ context.Context, mac net.HardwareAddr) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.leases, mac.String())
	return nil
}

// List returns all leases.
func (m *MemoryStore) List(_ context.Context) ([]Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Lease, 0, len(m.leases))
	for _, l := range m.leases {
		out = append(out, l)
	}
	return out, nil
}
