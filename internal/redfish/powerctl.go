package redfish

import (
	"context"
	"fmt"
	"sync"
)

// Power is what Redfish actions need from metald's power service
// (internal/power), which resolves the machine's BMC, carries the
// operation out and records the machine's power state and event.
// Actions are the power service's: on, off, soft, reset, cycle; devices
// pxe, disk, bios. request is the Redfish request, for the event.
// Both return ErrNotFound for an unknown machine.
type Power interface {
	Power(ctx context.Context, name, action, request string) error
	BootDevice(ctx context.Context, name, device string, persistent, efi bool, request string) error
}

// ResetAction maps a Redfish ResetType onto a power action.
func ResetAction(resetType string) (string, error) {
	switch resetType {
	case "On":
		return "on", nil
	case "ForceOff":
		return "off", nil
	case "GracefulShutdown":
		return "soft", nil
	case "ForceRestart":
		return "reset", nil
	case "PowerCycle":
		return "cycle", nil
	}
	return "", fmt.Errorf("%w: reset type %q", ErrInvalid, resetType)
}

// BootDevice maps a BootSourceOverrideTarget onto a boot device; ok is
// false for "None" (nothing to tell the BMC).
func BootDevice(target string) (dev string, ok bool, err error) {
	switch target {
	case "Pxe":
		return "pxe", true, nil
	case "Hdd":
		return "disk", true, nil
	case "BiosSetup":
		return "bios", true, nil
	case "None":
		return "", false, nil
	}
	return "", false, fmt.Errorf("%w: boot target %q", ErrInvalid, target)
}

// PowerController is the Controller that carries actions out through the
// power service. It remembers the last boot override set per machine
// (LastBoot), since BMCs do not report it uniformly.
type PowerController struct {
	Power Power

	mu   sync.Mutex
	boot map[string]BootOverride
}

// Reset performs the reset through the power service.
func (c *PowerController) Reset(ctx context.Context, name, resetType string) error {
	action, err := ResetAction(resetType)
	if err != nil {
		return err
	}
	return c.Power.Power(ctx, name, action, resetType)
}

// SetBoot sets the next boot device through the power service: Once is
// a one-time override, Continuous a persistent one, Disabled (or target
// None) is only recorded.
func (c *PowerController) SetBoot(ctx context.Context, name, target, enabled, mode string) error {
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
	if send && enabled != BootDisabled {
		req := fmt.Sprintf("boot override %s %s %s", target, enabled, mode)
		if err := c.Power.BootDevice(ctx, name, dev, enabled == BootContinuous, mode == BootModeUEFI, req); err != nil {
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
func (c *PowerController) LastBoot(name string) (BootOverride, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.boot[name]
	return b, ok
}
