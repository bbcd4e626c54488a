package api

import (
	"fmt"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
	"github.com/metal-iaas/metal/test/golden"
	"github.com/metal-iaas/metal/test/wiretest"
)

// TestWireUnchanged: the JSON of machines, events, leases and errors, and
// the YAML of events (metalctl events -f -o yaml), are byte for byte what
// metald served before its wire types moved to pkg/metalapi
// (testdata/wire, recorded from the inventory structs' own tags).
func TestWireUnchanged(t *testing.T) {
	ms := toMachines(wireMachines())
	golden.Check(t, "wire/machines", wiretest.JSON(t, ms))
	golden.Check(t, "wire/machine", wiretest.JSON(t, ms[0]))
	golden.Check(t, "wire/events", wiretest.JSON(t, toEvents(wireEvents())))
	golden.Check(t, "wire/leases", wiretest.JSON(t, toLeases(wireLeases())))
	golden.Check(t, "wire/error", wiretest.JSON(t, metalapi.Error{Error: `machine "x" not found`, Code: metalapi.CodeNotFound}))
	var y []byte
	for _, e := range toEvents(wireEvents()) {
		b, err := yaml.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		y = append(append(y, "---\n"...), b...)
	}
	golden.Check(t, "wire/events.yaml", string(y))
	// An empty page stays [], a missing one null, as before.
	if got := wiretest.JSON(t, toEvents(nil)) + wiretest.JSON(t, toEvents(wireEvents()[:0])) + wiretest.JSON(t, toLeases(nil)) + wiretest.JSON(t, toMachines(nil)); got != "null\n[]\nnull\n[]\n" {
		t.Errorf("empty lists: %q", got)
	}
}

// TestConvertersMissNoField: every field of a wire type is set from a
// full record, and every field of a request reaches the inventory (what a
// request cannot carry stays unset).
func TestConvertersMissNoField(t *testing.T) {
	var m inventory.Machine
	wiretest.Fill(&m)
	var e inventory.Event
	wiretest.Fill(&e)
	var l inventory.Lease
	wiretest.Fill(&l)
	for _, out := range []any{toMachine(m), toEvent(e), toLease(l)} {
		if unset := wiretest.Unset(out); len(unset) > 0 {
			t.Errorf("%T: %v unset", out, unset)
		}
	}
	var create metalapi.MachineCreate
	wiretest.Fill(&create)
	if got, want := fmt.Sprint(wiretest.Unset(fromMachineCreate(create))), "[State StateReason PowerState PowerCheckedAt Hardware UEFIBoot CreatedAt UpdatedAt]"; got != want { // uefi_boot: machine edit
		t.Errorf("create leaves %s unset, want %s", got, want)
	}
	var patch metalapi.MachinePatch
	wiretest.Fill(&patch)
	if got, want := fmt.Sprint(wiretest.Unset(fromMachinePatch(patch))), "[Hardware PowerState PowerAt]"; got != want {
		t.Errorf("patch leaves %s unset, want %s (state and reason go through the lifecycle)", got, want)
	}
}
