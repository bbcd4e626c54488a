package netboot

import (
	"context"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/metal-iaas/metal/pkg/dhcp"
)

// Event is one recorded event of MemoryInventory.
type Event struct {
	Time    time.Time
	MAC     string
	Machine string
	Kind    string
	Fields  map[string]any
}

// MemoryInventory is an in-memory Inventory for tests and the benchmark
// daemon. Its events can be watched.
type MemoryInventory struct {
	*dhcp.MemoryStore
	leases6  *dhcp.MemoryStore // DHCPv6 leases (Leases6)
	mu       sync.Mutex
	machines map[string]Machine // by MAC
	uuids    map[string]string  // uuid → MAC
	events   []Event
	notify   chan struct{}
	seq      int
}

// NewMemoryInventory returns an empty inventory.
func NewMemoryInventory() *MemoryInventory {
	return &MemoryInventory{MemoryStore: dhcp.NewMemoryStore(), leases6: dhcp.NewMemoryStore(), machines: map[string]Machine{}, uuids: map[string]string{}, notify: make(chan struct{})}
}

// Leases6 implements netboot.Leases6.
func (m *MemoryInventory) Leases6() dhcp.LeaseStore { return m.leases6 }

// Add registers a machine (and optionally its UUID).
func (m *MemoryInventory) Add(mc Machine, uuid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.machines[mc.MAC.String()] = mc
	if uuid != "" {
		m.uuids[strings.ToLower(uuid)] = mc.MAC.String()
	}
}

// MachineByMAC implements Inventory.
func (m *MemoryInventory) MachineByMAC(_ context.Context, mac net.HardwareAddr) (Machine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mc, ok := m.machines[mac.String()]
	if !ok {
		return Machine{}, ErrNotFound
	}
	return mc, nil
}

// MachineByUUID implements Inventory.
func (m *MemoryInventory) MachineByUUID(_ context.Context, uuid string) (Machine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mac, ok := m.uuids[strings.ToLower(uuid)]
	if !ok {
		return Machine{}, ErrNotFound
	}
	return m.machines[mac], nil
}

// DiscoverMachine implements Inventory.
func (m *MemoryInventory) DiscoverMachine(_ context.Context, mac net.HardwareAddr, h Hints) (Machine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mc, ok := m.machines[mac.String()]; ok {
		return mc, nil
	}
	m.seq++
	mc := Machine{MAC: mac, Name: fmt.Sprintf("discovered-%d", m.seq), State: "discovered"}
	m.machines[mac.String()] = mc
	if h.UUID != "" {
		m.uuids[strings.ToLower(h.UUID)] = mac.String()
	}
	return mc, nil
}

// RecordEvent implements Inventory.
func (m *MemoryInventory) RecordEvent(_ context.Context, mac net.HardwareAddr, name, kind string, fields map[string]any) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := Event{Time: time.Now(), Machine: name, Kind: kind, Fields: maps.Clone(fields)}
	if mac != nil {
		e.MAC = mac.String()
	}
	m.events = append(m.events, e)
	close(m.notify)
	m.notify = make(chan struct{})
	return nil
}

// Events returns a copy of all events so far.
func (m *MemoryInventory) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Event(nil), m.events...)
}

// WaitEvent waits until an event matching match is recorded or ctx ends.
func (m *MemoryInventory) WaitEvent(ctx context.Context, match func(Event) bool) (Event, error) {
	for {
		m.mu.Lock()
		for _, e := range m.events {
			if match(e) {
				m.mu.Unlock()
				return e, nil
			}
		}
		ch := m.notify
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-ch:
		}
	}
}
