package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Secure Boot firmware (Debian's ovmf): OVMF built with Secure Boot and
// SMM, and a variable store with Microsoft's keys enrolled and
// SecureBoot=1, so the firmware verifies what it boots against
// Microsoft's UEFI CA (which signs Debian's shim) and refuses the rest.
const (
	OVMFCodeSecure = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	OVMFVarsMS     = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
)

// CheckSecureBoot reports the first missing Secure Boot prerequisite
// (the firmware above, sbverify), wrapped in ErrMissing with how to
// install it.
func CheckSecureBoot() error {
	if err := CheckEFI(); err != nil {
		return err
	}
	for _, f := range []string{OVMFCodeSecure, OVMFVarsMS} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w: %s (apt-get install ovmf)", ErrMissing, f)
		}
	}
	if _, err := exec.LookPath("sbverify"); err != nil {
		return fmt.Errorf("%w: sbverify (apt-get install sbsigntool)", ErrMissing)
	}
	return nil
}

// Shim fetches (once, cached in .cache/shim) Debian's signed shim and
// network GRUB with scripts/fetch-shim.sh, which checks their pinned
// versions and checksums; it returns the directory for metald
// --shim-dir (shimx64.efi, grubx64.efi).
func Shim(ctx context.Context, root string) (string, error) {
	dir := filepath.Join(root, ".cache/shim")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", filepath.Join(root, "scripts/fetch-shim.sh"), dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("fetch shim: %w\n%s", err, out)
	}
	return dir, nil
}

// firmware is the VM's OVMF code and variable template, and the QEMU
// arguments its machine needs: Secure Boot firmware uses SMM to protect
// its variables, so q35 runs with SMM and the flash is secure.
func firmware(secure bool) (code, vars string, machine []string) {
	if secure {
		return OVMFCodeSecure, OVMFVarsMS, []string{"-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on"}
	}
	return OVMFCode, OVMFVars, []string{"-machine", "q35"}
}
