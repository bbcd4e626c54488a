package discovery

import (
	"context"
	"errors"
	"testing"

	"github.com/metal-iaas/metal/pkg/inventory"
)

func open(t *testing.T) *inventory.SQLite {
	t.Helper()
	s, err := inventory.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestEnrolOnceThenFind(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	m, err := Machine(ctx, s, "52:54:00:ab:cd:ef", "0b6c1b8e-0000-4000-8000-000000000001", ByDHCP)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "discovered-525400abcdef" || m.State != inventory.StateDiscovered || m.Tags["discovered-by"] != "dhcp" ||
		m.UUID != "0b6c1b8e-0000-4000-8000-000000000001" {
		t.Fatalf("discovered %+v", m)
	}
	again, err := Machine(ctx, s, "52:54:00:ab:cd:ef", "", ByAgent)
	if err != nil || again.Name != m.Name || again.Tags["discovered-by"] != "dhcp" {
		t.Fatalf("second discovery: %+v %v", again, err)
	}
}

// racing creates the machine for the MAC just before the real create, as
// a concurrent request would.
type racing struct{ *inventory.SQLite }

func (r racing) CreateMachine(ctx context.Context, m inventory.Machine) (inventory.Machine, error) {
	if _, err := r.SQLite.CreateMachine(ctx, m); err != nil {
		return inventory.Machine{}, err
	}
	return r.SQLite.CreateMachine(ctx, m)
}

func TestRaceReadsTheWinner(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	m, err := Machine(ctx, racing{s}, "52:54:00:00:00:02", "", ByAgent)
	if err != nil || m.Name != "discovered-525400000002" {
		t.Fatalf("lost race: %+v %v", m, err)
	}
}

// TestNameTakenByAnotherMachine: a conflict that is not this MAC's
// machine is an error, not somebody else's machine.
func TestNameTakenByAnotherMachine(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.CreateMachine(ctx, inventory.Machine{Name: "discovered-525400000003", MACs: []string{"52:54:00:00:00:99"}}); err != nil {
		t.Fatal(err)
	}
	if m, err := Machine(ctx, s, "52:54:00:00:00:03", "", ByAgent); !errors.Is(err, inventory.ErrConflict) {
		t.Fatalf("got %+v %v, want a conflict", m, err)
	}
}
