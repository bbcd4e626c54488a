package bmcsim

import (
	"fmt"
	"sync"
)

// Redfish reset types the emulated ComputerSystem accepts.
var ResetTypes = []string{"On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "Nmi", "ForceOn", "PushPowerButton", "PowerCycle"}

// BootTargets the emulated ComputerSystem accepts.
var BootTargets = []string{"None", "Pxe", "Hdd", "Cd", "BiosSetup", "Usb", "UefiHttp", "Floppy", "Diags", "Utilities", "RemoteDrive", "SDCard", "UefiShell", "UefiTarget"}

// Boot is the boot source override of the emulated system.
type Boot struct {
	Target  string // BootSourceOverrideTarget: None, Pxe, Hdd, BiosSetup, ...
	Enabled string // Disabled, Once, Continuous
	Mode    string // UEFI, Legacy
}

// Media is the emulated virtual CD.
type Media struct {
	Image    string
	Inserted bool
}

// PowerHook is called on every power transition of the emulated system,
// with the boot override in force for a power-on. An error fails the
// Reset action (HTTP 500) and leaves the state unchanged.
type PowerHook func(on bool, boot Boot) error

// state is a BMC's mutable state.
type state struct {
	mu      sync.Mutex
	power   bool
	boot    Boot
	media   Media
	resets  []string
	hook    PowerHook
	applied []Boot // boot overrides consumed by power-ons
}

// setPower applies one transition through the hook.
func (s *state) setPower(on bool) error {
	if s.power == on {
		return nil
	}
	boot := s.boot
	if s.hook != nil {
		if err := s.hook(on, boot); err != nil {
			return err
		}
	}
	s.power = on
	if on {
		s.applied = append(s.applied, boot)
		if boot.Enabled == "Once" {
			s.boot.Enabled = "Disabled"
		}
	}
	return nil
}

// reset performs a ComputerSystem.Reset.
func (s *state) reset(resetType string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	switch resetType {
	case "On", "ForceOn":
		err = s.setPower(true)
	case "ForceOff", "GracefulShutdown":
		err = s.setPower(false)
	case "PushPowerButton":
		err = s.setPower(!s.power)
	case "ForceRestart", "GracefulRestart", "PowerCycle":
		if s.power {
			if err = s.setPower(false); err != nil {
				break
			}
		} else if resetType != "PowerCycle" {
			return fmt.Errorf("system is off: %s needs it on", resetType)
		}
		err = s.setPower(true)
	case "Nmi":
		if !s.power {
			return fmt.Errorf("system is off: cannot send an NMI")
		}
	default:
		return fmt.Errorf("unsupported reset type %q", resetType)
	}
	if err == nil {
		s.resets = append(s.resets, resetType)
	}
	return err
}
