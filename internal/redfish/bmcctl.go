package redfish

import (
	"context"
	"fmt"
	"sync"

	"github.com/metal-iaas/metal/pkg/bmc"
)

// ResetOp maps a Redfish ResetType onto a pkg/bmc operation.
func ResetOp(resetType string) (bmc.Op, error) {
	switch resetType {
	case "On":
		return bmc.OpPowerOn(), nil
	case "ForceOff":
		return bmc.OpPowerOff(), nil
	case "GracefulShutdown":
		return bmc.OpPowerSoft(), nil
	case "ForceRestart":
		return bmc.OpPowerReset(), nil
	case "PowerCycle":
		return bmc.OpPowerCycle(), nil
	}
	return bmc.Op{}, fmt.Errorf("%w: reset type %q", ErrInvalid, resetType)
}

// BootDevice maps a BootSourceOverrideTarget onto a pkg/bmc boot device;
// ok is false for "None" (nothing to tell the BMC).
func BootDevice(target string) (dev bmc.BootDevice, ok bool, err error) {
	switch target {
	case "Pxe":
		return bmc.BootPXE, true, nil
	case "Hdd":
		return bmc.BootDisk, true, nil
	case "BiosSetup":
		return bmc.BootBIOS, true, nil
	case "None":
		return "", false, nil
	}
	return "", false, fmt.Errorf("%w: boot target %q", ErrInvalid, target)
}

// BMCController is a Controller that carries actions out through a
// pkg/bmc Manager. Resolve finds a machine's BMC endpoint (returning
// ErrNotFound for an unknown machine). It remembers the last boot
// override set per machine (LastBoot), since BMCs do not report it
// uniformly.
type BMCController struct {
	Manager *bmc.Manager
	Resolve func(ctx context.Context, name string) (bmc.Endpoint, error)

	mu   sync.Mutex
	boot map[string]BootOverride
}

// Reset performs the reset through the machine's BMC.
func (c *BMCController) Reset(ctx context.Context, name, resetType string) error {
	op, err := ResetOp(resetType)
	if err != nil {
		return err
	}
	ep, err := c.Resolve(ctx, name)
	if err != nil {
		return err
	}
	_, err = c.Manager.Do(ctx, ep, op)
	return err
}

// SetBoot sets the next boot device through the machine's BMC: Once is a
// one-time override, Continuous a persistent one, Disabled (or target
// None) is only recorded.
func (c *BMCController) SetBoot(ctx context.Context, name, target, enabled, mode string) error {
	dev, send, err := BootDevice(target)
	if err != nil {
		return err
	}
	if enabled != BootOnce && enabled != BootContinuous && enabled != BootDisabled {
		return fmt.Errorf("%w: BootSourceOverrideEnabled %q", ErrInvalid, enabled)
	}
	if mode != BootModeUEFI && mode != BootModeLegacy {
		return fmt.Errorf("%w: BootSourceOverrideMode %q", ErrInvalid, mode)
	}
	ep, err := c.Resolve(ctx, name)
	if err != nil {
		return err
	}
	if send && enabled != BootDisabled {
		if err := c.Manager.SetBootDevice(ctx, ep, dev, enabled == BootContinuous, mode == BootModeUEFI); err != nil {
			return err
		}
	}
	c.mu.Lock()
	if c.boot == nil {
		c.boot = map[string]BootOverride{}
	}
	c.boot[name] = BootOverride{Target: target, Enabled: enabled, Mode: mode}
	c.mu.Unlock()
	return nil
}

// LastBoot is the last boot override set for a machine through this
// controller.
func (c *BMCController) LastBoot(name string) (BootOverride, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.boot[name]
	return b, ok
}
