package api

import (
	"encoding/json"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/metal-iaas/metal/internal/golden"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// TestWireUnchanged: the JSON of machines, events, leases and errors, and
// the YAML of events (metalctl events -f -o yaml), are byte for byte what
// metald served before its wire types moved to pkg/metalapi
// (testdata/wire, recorded from the inventory structs' own tags).
func TestWireUnchanged(t *testing.T) {
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b) + "\n"
	}
	ms := toMachines(wireMachines())
	golden.Check(t, "wire/machines", js(ms))
	golden.Check(t, "wire/machine", js(ms[0]))
	golden.Check(t, "wire/events", js(toEvents(wireEvents())))
	golden.Check(t, "wire/leases", js(toLeases(wireLeases())))
	golden.Check(t, "wire/error", js(metalapi.Error{Error: `machine "x" not found`, Code: metalapi.CodeNotFound}))
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
	if got := js(toEvents(nil)) + js(toEvents(wireEvents()[:0])) + js(toLeases(nil)) + js(toMachines(nil)); got != "null\n[]\nnull\n[]\n" {
		t.Errorf("empty lists: %q", got)
	}
}

// TestMachineRequestsConvert: every field of a create or patch request
// reaches the inventory.
func TestMachineRequestsConvert(t *testing.T) {
	m := fromMachineCreate(metalapi.MachineCreate{Name: "n", MACs: []string{"a"}, IP: "i", BMC: "b", UUID: "u", Serial: "s", Tags: map[string]string{"k": "v"}})
	if m.Name != "n" || m.MACs[0] != "a" || m.IP != "i" || m.BMC != "b" || m.UUID != "u" || m.Serial != "s" || m.Tags["k"] != "v" {
		t.Errorf("create: %+v", m)
	}
	macs, ip, bmc, uuid, serial := []string{"a"}, "i", "b", "u", "s"
	p := fromMachinePatch(metalapi.MachinePatch{MACs: &macs, IP: &ip, BMC: &bmc, UUID: &uuid, Serial: &serial, Tags: map[string]string{"k": ""}})
	if p.MACs != &macs || p.IP != &ip || p.BMC != &bmc || p.UUID != &uuid || p.Serial != &serial || len(p.Tags) != 1 {
		t.Errorf("patch: %+v", p)
	}
}
