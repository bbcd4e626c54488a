package main

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/metal-iaas/metal/internal/discovery"
	"github.com/metal-iaas/metal/internal/netboot"
	"github.com/metal-iaas/metal/pkg/dhcp"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/pxe"
)

// netbootInventory adapts the inventory to what netboot needs.
type netbootInventory struct {
	store inventory.Store
}

var _ netboot.Inventory = netbootInventory{}

func (n netbootInventory) toNetboot(m inventory.Machine, mac net.HardwareAddr) netboot.Machine {
	out := netboot.Machine{MAC: mac, Name: m.Name, State: string(m.State), Hostname: m.Name, UEFIBoot: pxe.UEFIBoot(m.UEFIBoot)}
	if ip, err := netip.ParseAddr(m.IP); err == nil {
		out.IP = ip
	}
	if ip, err := netip.ParseAddr(m.IP6); err == nil {
		out.IP6 = ip
	}
	return out
}

func (n netbootInventory) MachineByMAC(ctx context.Context, mac net.HardwareAddr) (netboot.Machine, error) {
	m, err := n.store.MachineByMAC(ctx, mac.String())
	if errors.Is(err, inventory.ErrNotFound) {
		return netboot.Machine{}, netboot.ErrNotFound
	} else if err != nil {
		return netboot.Machine{}, err
	}
	return n.toNetboot(m, mac), nil
}

func (n netbootInventory) MachineByUUID(ctx context.Context, uuid string) (netboot.Machine, error) {
	m, err := n.store.MachineByUUID(ctx, uuid)
	if errors.Is(err, inventory.ErrNotFound) || errors.Is(err, inventory.ErrInvalid) {
		return netboot.Machine{}, netboot.ErrNotFound
	} else if err != nil {
		return netboot.Machine{}, err
	}
	var mac net.HardwareAddr
	if len(m.MACs) > 0 {
		mac, _ = inventory.ParseMAC(m.MACs[0])
	}
	return n.toNetboot(m, mac), nil
}

// DiscoverMachine enrols an unknown MAC as "discovered", named after it.
func (n netbootInventory) DiscoverMachine(ctx context.Context, mac net.HardwareAddr, h netboot.Hints) (netboot.Machine, error) {
	m, err := discovery.Machine(ctx, n.store, mac.String(), h.UUID, discovery.ByDHCP)
	if err != nil {
		return netboot.Machine{}, err
	}
	return n.toNetboot(m, mac), nil
}

func (n netbootInventory) RecordEvent(ctx context.Context, mac net.HardwareAddr, machine, kind string, fields map[string]any) error {
	_, err := n.store.AppendEvent(ctx, inventory.Event{Machine: machine, MAC: mac.String(), Type: kind, Data: fields})
	return err
}

// Leases: dhcp.LeaseStore over the inventory's lease table.

func (n netbootInventory) Get(ctx context.Context, mac net.HardwareAddr) (dhcp.Lease, error) {
	l, err := n.store.GetLease(ctx, mac.String())
	if errors.Is(err, inventory.ErrNotFound) {
		return dhcp.Lease{}, dhcp.ErrNotFound
	} else if err != nil {
		return dhcp.Lease{}, err
	}
	return toDHCPLease(l)
}

func toDHCPLease(l inventory.Lease) (dhcp.Lease, error) {
	mac, err := inventory.ParseMAC(l.MAC)
	if err != nil {
		return dhcp.Lease{}, err
	}
	ip, err := netip.ParseAddr(l.IP)
	if err != nil {
		return dhcp.Lease{}, err
	}
	return dhcp.Lease{MAC: mac, IP: ip, Hostname: l.Hostname, Expires: l.ExpiresAt, State: dhcp.LeaseState(l.State)}, nil
}

func (n netbootInventory) Put(ctx context.Context, l dhcp.Lease) error {
	return n.store.PutLease(ctx, inventory.Lease{MAC: l.MAC.String(), IP: l.IP.String(), Hostname: l.Hostname,
		State: string(l.State), ExpiresAt: l.Expires})
}

func (n netbootInventory) Delete(ctx context.Context, mac net.HardwareAddr) error {
	return n.store.DeleteLease(ctx, mac.String())
}

func (n netbootInventory) List(ctx context.Context) ([]dhcp.Lease, error) {
	ls, err := n.store.ListLeases(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]dhcp.Lease, 0, len(ls))
	for _, l := range ls {
		dl, err := toDHCPLease(l)
		if err != nil || !dl.IP.Is4() {
			continue // a v6 lease, or a row metald itself never writes; skip rather than fail DHCP
		}
		out = append(out, dl)
	}
	return out, nil
}
