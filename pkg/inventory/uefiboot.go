package inventory

import (
	"fmt"
	"strings"
)

// UEFI network boot chains a machine can be given (Machine.UEFIBoot). The
// empty value means the daemon's default (metald --uefi-boot).
const (
	UEFIBootDefault = ""
	// UEFIBootIPXE: UEFI firmware gets iPXE (snponly.efi), which firmware
	// enforcing Secure Boot refuses.
	UEFIBootIPXE = "ipxe"
	// UEFIBootShim: UEFI x86-64 firmware gets Debian's Microsoft-signed
	// shim, which loads Debian's signed network GRUB (Secure Boot).
	UEFIBootShim = "shim"
)

// NormalizeUEFIBoot validates a UEFI boot chain: "ipxe", "shim", or ""
// (or "default") for the daemon's default. Case and surrounding spaces
// are ignored.
func NormalizeUEFIBoot(s string) (string, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case UEFIBootDefault, "default":
		return UEFIBootDefault, nil
	case UEFIBootIPXE, UEFIBootShim:
		return v, nil
	}
	return "", fmt.Errorf("%w: uefi boot %q: want ipxe, shim or default", ErrInvalid, s)
}
