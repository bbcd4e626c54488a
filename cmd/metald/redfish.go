package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/metal-iaas/metal/internal/power"
	"github.com/metal-iaas/metal/internal/redfish"
	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// redfishSystems shows the inventory's machines as Redfish systems.
type redfishSystems struct {
	store inventory.Store
	ctl   *redfish.PowerController
}

func (r redfishSystems) ListSystems(ctx context.Context) ([]redfish.System, error) {
	ms, err := r.store.ListMachines(ctx, inventory.MachineFilter{})
	if err != nil {
		return nil, err
	}
	out := make([]redfish.System, len(ms))
	for i, m := range ms {
		out[i] = r.system(m)
	}
	return out, nil
}

func (r redfishSystems) GetSystem(ctx context.Context, name string) (redfish.System, error) {
	m, err := r.store.GetMachine(ctx, name)
	if errors.Is(err, inventory.ErrNotFound) {
		return redfish.System{}, fmt.Errorf("%w: %v", redfish.ErrNotFound, err)
	} else if err != nil {
		return redfish.System{}, err
	}
	return r.system(m), nil
}

func (r redfishSystems) system(m inventory.Machine) redfish.System {
	s := redfish.System{Name: m.Name, UUID: m.UUID, Serial: m.Serial, MACs: m.MACs, PowerState: m.PowerState}
	switch m.State {
	case inventory.StateFailed:
		s.Health = "Critical"
	case inventory.StateMaintenance:
		s.State = "StandbyOffline"
	case inventory.StateProvisioning, inventory.StateInspecting, inventory.StateDeprovisioning:
		s.State = "Updating"
	}
	var hw agentapi.Inventory
	if len(m.Hardware) > 0 && json.Unmarshal(m.Hardware, &hw) == nil {
		s.CPUModel, s.CPUCount, s.CPUCores = hw.CPU.Model, hw.CPU.Sockets, hw.CPU.Cores
		s.MemoryGiB = float64(hw.MemoryBytes) / (1 << 30)
		if s.Serial == "" {
			s.Serial = hw.DMI.SystemSerial
		}
	}
	if b, ok := r.ctl.LastBoot(m.Name); ok {
		s.Boot = b
	} else {
		s.Boot = redfish.BootOverride{Target: "None", Enabled: redfish.BootDisabled, Mode: redfish.BootModeUEFI}
	}
	return s
}

// redfishPower adapts the power service to Redfish's actions: the power
// service resolves the BMC, acts and records the event (as from Redfish).
type redfishPower struct{ pw *power.Service }

func (r redfishPower) Power(ctx context.Context, name, action, request string) error {
	return redfishErr(r.pw.MachineFrom(ctx, name, action, power.Origin{Via: "redfish", Request: request}))
}

func (r redfishPower) BootDevice(ctx context.Context, name, device string, persistent, efi bool, request string) error {
	return redfishErr(r.pw.MachineBootFrom(ctx, name, device, persistent, efi, power.Origin{Via: "redfish", Request: request}))
}

func redfishErr(err error) error {
	switch {
	case errors.Is(err, inventory.ErrNotFound):
		return fmt.Errorf("%w: %v", redfish.ErrNotFound, err)
	case errors.Is(err, inventory.ErrInvalid):
		return fmt.Errorf("%w: %v", redfish.ErrInvalid, err)
	}
	return err
}

// redfishAuth accepts metal API tokens: as X-Auth-Token or Bearer, and as
// the password of HTTP Basic auth and session logins (any user name). A
// session's credential is its token's id, checked against the store on
// every use: revoking the token ends the session.
type redfishAuth struct{ store inventory.Store }

func (a redfishAuth) ValidToken(ctx context.Context, token string) bool {
	_, err := a.store.CheckToken(ctx, token)
	return err == nil
}

func (a redfishAuth) CheckPassword(ctx context.Context, _, pass string) (string, bool) {
	t, err := a.store.CheckToken(ctx, pass)
	if err != nil {
		return "", false
	}
	return t.ID, true
}

func (a redfishAuth) CredentialValid(ctx context.Context, id string) bool {
	ts, err := a.store.ListTokens(ctx)
	if err != nil {
		return false // fail closed: the next request asks again
	}
	for _, t := range ts {
		if t.ID == id {
			return !t.Revoked
		}
	}
	return false
}
