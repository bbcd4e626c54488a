package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/metal-iaas/metal/internal/redfish"
	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/bmc"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// redfishSystems shows the inventory's machines as Redfish systems.
type redfishSystems struct {
	store inventory.Store
	ctl   *redfishControl
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

// redfishControl carries Redfish actions out on the machine's own BMC and
// records them as events, like metalctl power does.
type redfishControl struct {
	*redfish.BMCController
	store inventory.Store
}

func newRedfishControl(store inventory.Store, mgr *bmc.Manager) *redfishControl {
	return &redfishControl{store: store, BMCController: &redfish.BMCController{Manager: mgr,
		Resolve: func(ctx context.Context, name string) (bmc.Endpoint, error) {
			raw, err := store.BMCURL(ctx, name)
			if errors.Is(err, inventory.ErrNotFound) {
				if _, gerr := store.GetMachine(ctx, name); gerr != nil {
					return bmc.Endpoint{}, fmt.Errorf("%w: %v", redfish.ErrNotFound, gerr)
				}
				return bmc.Endpoint{}, fmt.Errorf("machine %s has no BMC configured", name)
			} else if err != nil {
				return bmc.Endpoint{}, err
			}
			return bmc.ParseURL(raw)
		}}}
}

func (c *redfishControl) Reset(ctx context.Context, name, resetType string) error {
	err := c.BMCController.Reset(ctx, name, resetType)
	typ, msg := "power.action", "redfish "+resetType+": ok"
	if err != nil {
		if errors.Is(err, redfish.ErrNotFound) || errors.Is(err, redfish.ErrInvalid) {
			return err
		}
		typ, msg = "power.failed", "redfish "+resetType+": "+err.Error()
	}
	_, _ = c.store.AppendEvent(ctx, inventory.Event{Machine: name, Type: typ, Message: msg,
		Data: map[string]any{"action": resetType, "via": "redfish", "ok": err == nil}})
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
