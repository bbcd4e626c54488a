package trust

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// TestBinderIPv6Lease: a machine's live DHCPv6 lease is one of its
// addresses (Check), and the machine is found at it (MachineAt, as the
// metadata service asks); a stranger and an expired lease are not.
func TestBinderIPv6Lease(t *testing.T) {
	ctx := context.Background()
	store, err := inventory.OpenSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mac := "52:54:00:aa:06:01"
	m, err := store.CreateMachine(ctx, inventory.Machine{Name: "m6", MACs: []string{mac}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutLease(ctx, inventory.Lease{MAC: mac, IP: "10.0.0.10", State: "bound", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := store.PutLease6(ctx, inventory.Lease{MAC: mac, IP: "fd66::100", State: "bound", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	b := New(store)
	for _, src := range []string{"10.0.0.10", "fd66::100"} {
		if err := b.Check(ctx, m, netip.MustParseAddr(src)); err != nil {
			t.Errorf("Check from %s: %v", src, err)
		}
		if got, err := b.MachineAt(ctx, netip.MustParseAddr(src)); err != nil || got.Name != "m6" {
			t.Errorf("MachineAt(%s) = %q, %v", src, got.Name, err)
		}
	}
	if err := b.Check(ctx, m, netip.MustParseAddr("fd66::166")); !errors.Is(err, ErrForeign) {
		t.Errorf("stranger: %v", err)
	}
	b.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := b.MachineAt(ctx, netip.MustParseAddr("fd66::100")); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("expired v6 lease still finds the machine: %v", err)
	}
}

// TestBinderIPv6Reservation: a machine's reserved IPv6 address is one of
// its addresses without any lease, and the machine is found at it; the
// check names it when another address asks.
func TestBinderIPv6Reservation(t *testing.T) {
	ctx := context.Background()
	store, err := inventory.OpenSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m, err := store.CreateMachine(ctx, inventory.Machine{Name: "r6", MACs: []string{"52:54:00:aa:06:02"}, IP: "10.0.0.20", IP6: "fd66::20"})
	if err != nil {
		t.Fatal(err)
	}
	b := New(store)
	for _, src := range []string{"10.0.0.20", "fd66::20"} {
		if err := b.Check(ctx, m, netip.MustParseAddr(src)); err != nil {
			t.Errorf("Check from %s: %v", src, err)
		}
		if got, err := b.MachineAt(ctx, netip.MustParseAddr(src)); err != nil || got.Name != "r6" {
			t.Errorf("MachineAt(%s) = %q, %v", src, got.Name, err)
		}
	}
	err = b.Check(ctx, m, netip.MustParseAddr("fd66::21"))
	if !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), "10.0.0.20, fd66::20") {
		t.Errorf("stranger: %v", err)
	}
}
