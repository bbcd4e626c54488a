package hwinfo

import (
	"io"
	"os"
	"path/filepath"
)

// Where the kernel tells whether UEFI Secure Boot was on at boot.
const (
	// bootParams is the zero page the kernel was booted with (x86,
	// always in sysfs); its byte 0x1ec is boot_params.secure_boot, the
	// kernel's efi_secureboot_mode: 0 unset, 1 unknown, 2 disabled,
	// 3 enabled.
	bootParams       = "sys/kernel/boot_params/data"
	bootParamsSBOff  = 0x1ec
	secureBootOn     = 3
	efiDir           = "sys/firmware/efi"
	efiVarSecureBoot = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
)

// SecureBoot reports the firmware kind ("uefi", "bios") and whether
// Secure Boot is enforced: the kernel's own verdict in boot_params first
// (no module needed), else the SecureBoot EFI variable when efivarfs is
// mounted (4 attribute bytes, then 1 for enabled). Anything unreadable
// counts as not enforced.
func SecureBoot(root string) (firmware string, enabled bool) {
	if _, err := os.Stat(filepath.Join(root, efiDir)); err != nil {
		return "bios", false
	}
	if f, err := os.Open(filepath.Join(root, bootParams)); err == nil {
		b := make([]byte, 1)
		_, err := f.ReadAt(b, bootParamsSBOff)
		f.Close()
		if err == nil && b[0] != 0 && b[0] != 1 { // 0/1: the kernel did not decide; ask the variable
			return "uefi", b[0] == secureBootOn
		}
	}
	if f, err := os.Open(filepath.Join(root, efiVarSecureBoot)); err == nil {
		b := make([]byte, 5)
		_, err := io.ReadFull(f, b)
		f.Close()
		return "uefi", err == nil && b[4] == 1
	}
	return "uefi", false
}
