// Package discovery is the one rule for enrolling a machine metald does
// not know: a MAC seen on the provisioning network (DHCP, /boot.ipxe) or
// an agent registering becomes a machine in state discovered, named after
// the MAC.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// Store is what discovery needs from the inventory.
type Store interface {
	MachineByMAC(ctx context.Context, mac string) (inventory.Machine, error)
	CreateMachine(ctx context.Context, m inventory.Machine) (inventory.Machine, error)
}

// Who saw the machine first (its discovered-by tag).
const (
	ByDHCP  = "dhcp"
	ByAgent = "agent"
)

// Name is the name a discovered machine gets: discovered-<MAC in hex>.
func Name(mac string) string {
	return "discovered-" + strings.ReplaceAll(strings.ToLower(mac), ":", "")
}

// Machine returns the machine that has mac, enrolling it as discovered
// when none has: tagged discovered-by by, with uuid (may be empty). mac
// is normalised (lower case, colons). Two requests for one MAC at once
// both get the one machine: the loser of the race reads the winner's.
func Machine(ctx context.Context, store Store, mac, uuid, by string) (inventory.Machine, error) {
	m, err := store.MachineByMAC(ctx, mac)
	if !errors.Is(err, inventory.ErrNotFound) {
		return m, err
	}
	m, err = store.CreateMachine(ctx, inventory.Machine{Name: Name(mac), MACs: []string{mac}, UUID: uuid,
		State: inventory.StateDiscovered, Tags: map[string]string{"discovered-by": by}})
	if errors.Is(err, inventory.ErrConflict) {
		// Raced with another request for the same MAC.
		if again, aerr := store.MachineByMAC(ctx, mac); aerr == nil {
			return again, nil
		}
	}
	if err != nil {
		return inventory.Machine{}, fmt.Errorf("discover %s: %w", mac, err)
	}
	return m, nil
}
