package bmc

import (
	"context"
	"fmt"
	"strings"
)

// PowerState is a machine's power state as the BMC reports it.
type PowerState string

// Power states. Provider texts ("Chassis Power is on", Redfish "On",
// "PoweringOff", ...) are normalised onto these three.
const (
	PowerOn      PowerState = "on"
	PowerOff     PowerState = "off"
	PowerUnknown PowerState = "unknown"
)

// NormalizePowerState maps a provider's power text onto a PowerState.
func NormalizePowerState(raw string) PowerState {
	s := strings.ToLower(strings.TrimSpace(raw))
	switch {
	case s == "on", s == "poweringon", strings.Contains(s, "power is on"):
		return PowerOn
	case s == "off", s == "poweringoff", strings.Contains(s, "power is off"):
		return PowerOff
	}
	return PowerUnknown
}

// BootDevice is the device a machine boots from next.
type BootDevice string

// Boot devices.
const (
	BootPXE  BootDevice = "pxe"
	BootDisk BootDevice = "disk"
	BootBIOS BootDevice = "bios"
)

// ParseBootDevice validates a boot device name.
func ParseBootDevice(s string) (BootDevice, error) {
	switch d := BootDevice(strings.ToLower(strings.TrimSpace(s))); d {
	case BootPXE, BootDisk, BootBIOS:
		return d, nil
	}
	return "", fmt.Errorf("unknown boot device %q (want pxe, disk or bios)", s)
}

// Op is one operation on one BMC, for Manager.Do and Manager.Each. Build
// one with the OpXxx functions.
type Op struct {
	// Name names the operation in logs and errors ("power on").
	Name string
	run  func(ctx context.Context, d driver) (PowerState, error)
}

// OpPowerStatus reads the power state.
func OpPowerStatus() Op {
	return Op{Name: "power status", run: func(ctx context.Context, d driver) (PowerState, error) {
		raw, err := d.PowerStateGet(ctx)
		if err != nil {
			return PowerUnknown, err
		}
		st := NormalizePowerState(raw)
		if st == PowerUnknown {
			return st, fmt.Errorf("%w: unrecognised power state %q", ErrBMC, strings.TrimSpace(raw))
		}
		return st, nil
	}}
}

func powerOp(name, state string, result PowerState) Op {
	return Op{Name: name, run: func(ctx context.Context, d driver) (PowerState, error) {
		ok, err := d.PowerSet(ctx, state)
		if err != nil {
			return PowerUnknown, err
		}
		// bmclib's Redfish provider reports a successful graceful
		// shutdown request as ok=false: only an error means failure for
		// "soft".
		if !ok && state != "soft" {
			return PowerUnknown, fmt.Errorf("%w: %w", ErrBMC, errNotOK)
		}
		return result, nil
	}}
}

// OpPowerOn powers the machine on (no-op when on).
func OpPowerOn() Op { return powerOp("power on", "on", PowerOn) }

// OpPowerOff removes power immediately (hard off).
func OpPowerOff() Op { return powerOp("power off", "off", PowerOff) }

// OpPowerSoft asks the operating system to shut down (ACPI).
func OpPowerSoft() Op { return powerOp("power soft", "soft", PowerUnknown) }

// OpPowerCycle turns power off and on again; a machine that is off is
// powered on (BMCs differ on cycling an off machine: some refuse).
func OpPowerCycle() Op { return restartOp("power cycle", "cycle") }

// OpPowerReset resets the machine (warm reset); a machine that is off is
// powered on.
func OpPowerReset() Op { return restartOp("power reset", "reset") }

func restartOp(name, state string) Op {
	inner := powerOp(name, state, PowerOn)
	on := powerOp(name, "on", PowerOn)
	return Op{Name: name, run: func(ctx context.Context, d driver) (PowerState, error) {
		raw, err := d.PowerStateGet(ctx)
		if err != nil {
			return PowerUnknown, err
		}
		if NormalizePowerState(raw) == PowerOff {
			return on.run(ctx, d)
		}
		return inner.run(ctx, d)
	}}
}

// OpSetBootDevice sets the next boot device; persistent keeps it for all
// later boots, efi selects UEFI boot.
func OpSetBootDevice(dev BootDevice, persistent, efi bool) Op {
	return Op{Name: "set boot device " + string(dev), run: func(ctx context.Context, d driver) (PowerState, error) {
		if _, err := ParseBootDevice(string(dev)); err != nil {
			return PowerUnknown, fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		ok, err := d.BootDeviceSet(ctx, string(dev), persistent, efi)
		if err != nil {
			return PowerUnknown, err
		}
		if !ok {
			return PowerUnknown, fmt.Errorf("%w: %w", ErrBMC, errNotOK)
		}
		return PowerUnknown, nil
	}}
}

// OpVirtualMediaInsert inserts the image at mediaURL as a virtual CD.
// ErrUnsupported for IPMI.
func OpVirtualMediaInsert(mediaURL string) Op {
	return Op{Name: "insert virtual media", run: func(ctx context.Context, d driver) (PowerState, error) {
		if mediaURL == "" {
			return PowerUnknown, fmt.Errorf("%w: empty media url", ErrUnsupported)
		}
		return PowerUnknown, setMedia(ctx, d, mediaURL)
	}}
}

// OpVirtualMediaEject ejects the virtual CD. ErrUnsupported for IPMI.
func OpVirtualMediaEject() Op {
	return Op{Name: "eject virtual media", run: func(ctx context.Context, d driver) (PowerState, error) {
		return PowerUnknown, setMedia(ctx, d, "")
	}}
}

func setMedia(ctx context.Context, d driver, mediaURL string) error {
	md, ok := d.(mediaDriver)
	if !ok {
		return fmt.Errorf("%w: virtual media needs redfish", ErrUnsupported)
	}
	ok, err := md.SetVirtualMedia(ctx, "CD", mediaURL)
	if err != nil {
		if strings.Contains(err.Error(), "no virtual media found") || strings.Contains(err.Error(), "not a supported media type") {
			return fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %w", ErrBMC, errNotOK)
	}
	return nil
}

// opVerify checks that the BMC answers with these credentials.
func opVerify() Op {
	op := OpPowerStatus()
	op.Name = "verify"
	return op
}
