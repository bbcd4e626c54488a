package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needEFI is need plus the UEFI prerequisites.
func needEFI(t *testing.T) {
	t.Helper()
	need(t)
	if err := CheckEFI(); err != nil {
		if os.Getenv("METAL_REQUIRE_ALL") == "1" {
			t.Fatalf("cannot run: %v (METAL_REQUIRE_ALL=1, so this is a failure)", err)
		}
		t.Skipf("SKIPPED, cannot run: %v (set METAL_REQUIRE_ALL=1 to make this a failure)", err)
	}
}

// TestEFIImageBoots builds the UEFI installed-OS disk and boots a copy of
// it on q35 under OVMF with no boot entry of its own (OVMF → removable
// media path EFI/BOOT/BOOTX64.EFI → systemd-stub UKI → Debian kernel →
// /init): the console must show both markers. The disk must hash the same
// after the boot (the e2e tests compare the provisioned disk with the
// image after the installed OS ran), and sfdisk must read the GPT back
// with one EFI System Partition.
func TestEFIImageBoots(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	needEFI(t)
	ctx := context.Background()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kdir, err := Kernel(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	bins, err := Build(ctx, root, filepath.Join(dir, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := BuildEFIImage(ctx, ImageConfig{Dir: filepath.Join(dir, "img"), KernelDir: kdir, Init: bins.InstalledInit})
	if err != nil {
		t.Fatal(err)
	}
	out, err := Output(ctx, "sfdisk", "--dump", img.Raw)
	if err != nil || !strings.Contains(out, "label: gpt") || !strings.Contains(out, "type="+espType) {
		t.Fatalf("sfdisk --dump %s: %v\n%s\nwant a GPT with an EFI System Partition", img.Raw, err, out)
	}
	if out, err := Output(ctx, "mdir", "-i", img.Raw+"@@1M", "::EFI/BOOT"); err != nil || !strings.Contains(out, "BOOTX64  EFI") {
		t.Fatalf("mdir ::EFI/BOOT: %v\n%s", err, out)
	}
	if out, err := Output(ctx, "tar", "-tf", img.OVA); err != nil || strings.Fields(out)[0] != "efi.ovf" {
		t.Errorf("ova members %q %v: want efi.ovf first", out, err)
	}

	disk := filepath.Join(dir, "disk.raw")
	if err := copyFile(img.Raw, disk); err != nil {
		t.Fatal(err)
	}
	vars := filepath.Join(dir, "OVMF_VARS.fd")
	if err := copyFile(OVMFVars, vars); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(dir, "serial.log")
	vctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(vctx, "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "384",
		"-machine", "q35", "-display", "none", "-monitor", "none", "-serial", "file:"+serial, "-nic", "none",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+OVMFCode,
		"-drive", "if=pflash,format=raw,unit=1,file="+vars,
		"-drive", "file="+disk+",if=none,id=d0,format=raw",
		"-device", "virtio-blk-pci,drive=d0,bootindex=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	defer stop()
	start := time.Now()
	for {
		b, _ := os.ReadFile(serial)
		if strings.Contains(string(b), "METAL-INSTALLED-OS-OK hostname=unknown") {
			if !strings.Contains(string(b), "METAL-INSTALLED-OS-BOOTED kernel=6.") {
				t.Errorf("no boot marker with the kernel release:\n%s", b)
			}
			t.Logf("installed OS up under OVMF after %.1f s", time.Since(start).Seconds())
			break
		}
		if vctx.Err() != nil {
			t.Fatalf("no marker within 3 min; serial:\n%s", b)
		}
		time.Sleep(500 * time.Millisecond)
	}
	stop()
	sum, err := FileSHA256(disk, img.SizeBytes)
	if err != nil {
		t.Fatal(err)
	}
	if sum != img.RawSHA256 {
		t.Errorf("the disk changed while the OS booted: %s, image %s", sum, img.RawSHA256)
	}
}
