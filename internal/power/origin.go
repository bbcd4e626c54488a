package power

import (
	"context"
	"fmt"

	"github.com/metal-iaas/metal/pkg/bmc"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// Origin names the northbound protocol an operation came through and its
// own name for it, for the event: {Via: "redfish", Request: "PowerCycle"}
// is recorded as "redfish PowerCycle: ok". The zero Origin is the REST
// API and metald itself.
type Origin struct {
	Via     string
	Request string
}

// MachineFrom runs one power action on one machine for a northbound
// protocol (Redfish): like Machine, with the event naming the origin.
func (s *Service) MachineFrom(ctx context.Context, name, action string, o Origin) error {
	op, err := opFor(action)
	if err != nil {
		return err
	}
	res, err := s.run(ctx, Selector{Machines: []string{name}}, action, op, o)
	return firstErr(res, err)
}

// MachineBootFrom sets one machine's next boot device for a northbound
// protocol: like MachineBoot, with the event naming the origin.
func (s *Service) MachineBootFrom(ctx context.Context, name, device string, persistent, efi bool, o Origin) error {
	dev, err := bmc.ParseBootDevice(device)
	if err != nil {
		return fmt.Errorf("%w: %v", inventory.ErrInvalid, err)
	}
	res, err := s.run(ctx, Selector{Machines: []string{name}}, "bootdev "+string(dev), bmc.OpSetBootDevice(dev, persistent, efi), o)
	return firstErr(res, err)
}
