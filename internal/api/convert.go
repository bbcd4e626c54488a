package api

import (
	"encoding/json"

	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// The API's edge: inventory records become pkg/metalapi wire types here
// and nowhere else, so that the inventory's fields can change without
// changing what clients see.

// toMachine is a machine as the API shows it, with its hardware report.
func toMachine(m inventory.Machine) metalapi.Machine {
	return metalapi.Machine{
		Name: m.Name, MACs: m.MACs, UUID: m.UUID, Serial: m.Serial, IP: m.IP, IP6: m.IP6, Tags: m.Tags,
		State: metalapi.State(m.State), StateReason: m.StateReason, BMC: m.BMC,
		PowerState: m.PowerState, PowerCheckedAt: m.PowerCheckedAt, UEFIBoot: m.UEFIBoot,
		CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
		Hardware: json.RawMessage(m.Hardware),
	}
}

func toMachines(ms []inventory.Machine) []metalapi.Machine {
	out := make([]metalapi.Machine, len(ms))
	for i, m := range ms {
		out[i] = toMachine(m)
	}
	return out
}

// fromMachineCreate is the inventory record a create request asks for.
func fromMachineCreate(req metalapi.MachineCreate) inventory.Machine {
	return inventory.Machine{
		Name: req.Name, MACs: req.MACs, IP: req.IP, IP6: req.IP6, BMC: req.BMC, UUID: req.UUID, Serial: req.Serial, Tags: req.Tags,
	}
}

// fromMachinePatch is the inventory patch of a PATCH request (its state
// change goes through the lifecycle separately).
func fromMachinePatch(req metalapi.MachinePatch) inventory.MachinePatch {
	return inventory.MachinePatch{
		MACs: req.MACs, IP: req.IP, IP6: req.IP6, BMC: req.BMC, UUID: req.UUID, Serial: req.Serial, Tags: req.Tags,
		UEFIBoot: req.UEFIBoot,
	}
}

func toEvent(e inventory.Event) metalapi.Event {
	return metalapi.Event{ID: e.ID, Time: e.Time, Machine: e.Machine, MAC: e.MAC, Type: e.Type, Message: e.Message, Data: e.Data}
}

// toEvents keeps an empty page an empty list ([], not null).
func toEvents(evs []inventory.Event) []metalapi.Event {
	if evs == nil {
		return nil
	}
	out := make([]metalapi.Event, len(evs))
	for i, e := range evs {
		out[i] = toEvent(e)
	}
	return out
}

func toLease(l inventory.Lease) metalapi.Lease {
	return metalapi.Lease{MAC: l.MAC, IP: l.IP, Hostname: l.Hostname, State: l.State, ExpiresAt: l.ExpiresAt, UpdatedAt: l.UpdatedAt}
}

func toLeases(ls []inventory.Lease) []metalapi.Lease {
	if ls == nil {
		return nil
	}
	out := make([]metalapi.Lease, len(ls))
	for i, l := range ls {
		out[i] = toLease(l)
	}
	return out
}
