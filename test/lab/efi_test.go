package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/testenv"
)

// needEFI is need plus the UEFI prerequisites.
func needEFI(t *testing.T) {
	t.Helper()
	need(t)
	if err := CheckEFI(); err != nil {
		testenv.Require(t, false, err.Error())
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
	ctx, dir, img := testImage(t, BuildEFIImage)
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

// TestUEFIWrapperBootOrder runs the UEFI VM wrapper with a stand-in for
// QEMU that prints its arguments: the BMC's -boot n must put the NIC
// first, -boot c (and no -boot) the disk; the BIOS NIC and disk
// arguments are replaced, the OVMF flash drives added, and the rest
// (-daemonize -pidfile from chassis control) passed on.
func TestUEFIWrapperBootOrder(t *testing.T) {
	if _, err := os.Stat(OVMFVars); err != nil {
		t.Skipf("SKIPPED: %s missing (apt-get install ovmf)", OVMFVars)
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake-qemu")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	v := &VM{Cfg: VMConfig{Name: "u", MAC: "52:54:00:00:00:01"}, Dir: dir, Disk: filepath.Join(dir, "disk.raw")}
	cmd, err := uefiVM(v, []string{fake, "-m", "384",
		"-device", "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01",
		"-drive", "file=" + v.Disk + ",if=virtio,format=raw,cache=unsafe"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args      []string
		nic, disk string
	}{
		{[]string{"-boot", "n", "-daemonize"}, "1", "2"},
		{[]string{"-boot", "c", "-daemonize"}, "2", "1"},
		{[]string{"-boot", "d", "-daemonize"}, "2", "1"},
		{[]string{"-daemonize"}, "2", "1"},
	} {
		out, err := exec.Command(cmd[0], tc.args...).Output()
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		args := strings.Split(strings.TrimSpace(string(out)), "\n")
		got := strings.Join(args, " ")
		for _, want := range []string{
			"-m 384", "-machine q35", "readonly=on,file=" + OVMFCode, "unit=1,file=" + filepath.Join(dir, "OVMF_VARS.fd"),
			"virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01,romfile=,bootindex=" + tc.nic,
			"virtio-blk-pci,drive=d0,bootindex=" + tc.disk,
		} {
			if !strings.Contains(got, want) {
				t.Errorf("%v: qemu got %q, want %q in it", tc.args, got, want)
			}
		}
		if strings.Contains(got, "-boot") || strings.Contains(got, "if=virtio") || args[len(args)-1] != "-daemonize" {
			t.Errorf("%v: qemu got %q: want no -boot, no BIOS disk, -daemonize passed on last", tc.args, got)
		}
	}
}
