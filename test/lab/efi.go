package lab

import (
	"context"
	"debug/pe"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// UEFI prerequisites (Debian packages ovmf, systemd-boot-efi, binutils).
const (
	OVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	// EFIStub is systemd's EFI stub, the loader half of a Unified Kernel
	// Image: it boots the .linux section with the .initrd and .cmdline
	// sections embedded next to it.
	EFIStub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
)

// CheckEFI reports the first missing UEFI prerequisite (OVMF firmware,
// systemd's EFI stub, objcopy), wrapped in ErrMissing with how to install
// it. Check covers the rest of the lab.
func CheckEFI() error {
	for f, pkg := range map[string]string{OVMFCode: "ovmf", OVMFVars: "ovmf", EFIStub: "systemd-boot-efi"} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w: %s (apt-get install %s)", ErrMissing, f, pkg)
		}
	}
	if _, err := exec.LookPath("objcopy"); err != nil {
		return fmt.Errorf("%w: objcopy (apt-get install binutils)", ErrMissing)
	}
	return nil
}

// espType is the GPT partition type GUID of an EFI System Partition.
const espType = "C12A7328-F80F-11D2-BA4B-00A0C93EC93B"

// BuildEFIImage makes the UEFI variant of the installed-OS disk, without
// loop devices: a GPT disk (sfdisk) whose one partition, an EFI System
// Partition (FAT16, mkfs.fat --offset) from 1 MiB on, holds a Unified
// Kernel Image (systemd's EFI stub + Debian's kernel + the initramfs with
// cfg.Init + the command line, joined by objcopy) at the removable-media
// path EFI/BOOT/BOOTX64.EFI, which OVMF boots with no boot entry of its
// own. The returned Image has Raw, RawSHA256 and OVA (streamOptimized
// VMDK); the other formats stay empty.
func BuildEFIImage(ctx context.Context, cfg ImageConfig) (*Image, error) {
	if cfg.Dir == "" || cfg.KernelDir == "" || cfg.Init == "" {
		return nil, fmt.Errorf("lab: image Dir, KernelDir and Init are required")
	}
	if err := CheckEFI(); err != nil {
		return nil, err
	}
	if cfg.SizeBytes == 0 {
		cfg.SizeBytes = 64 << 20
	}
	const partBytes = 48 << 20
	// The backup GPT takes the last 33 sectors.
	if cfg.SizeBytes < partStart+partBytes+(1<<20) || cfg.SizeBytes%512 != 0 {
		return nil, fmt.Errorf("lab: EFI image size %d: want a multiple of 512 of at least %d", cfg.SizeBytes, partStart+partBytes+(1<<20))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	p := func(n string) string { return filepath.Join(cfg.Dir, n) }
	img := &Image{Raw: p("efi.raw"), OVA: p("efi.ova"), SizeBytes: cfg.SizeBytes}

	if err := buildInitrd(cfg.KernelDir, cfg.Init, []string{"virtio_pci", "virtio_net", "virtio_blk"}, p("efi-initrd")); err != nil {
		return nil, err
	}
	cmdline := "quiet"
	if cfg.MetadataURL != "" {
		cmdline += " metal.metadata=" + cfg.MetadataURL
	}
	cmdline += " console=ttyS0"
	if err := BuildUKI(ctx, filepath.Join(cfg.KernelDir, "vmlinuz"), p("efi-initrd"), cmdline, p("BOOTX64.EFI")); err != nil {
		return nil, err
	}

	_ = os.Remove(img.Raw)
	if err := os.WriteFile(img.Raw, nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.Truncate(img.Raw, cfg.SizeBytes); err != nil {
		return nil, err
	}
	// A fixed disk GUID keeps the image (and so its SHA-256) reproducible
	// apart from the FAT timestamps.
	table := fmt.Sprintf("label: gpt\nlabel-id: 6D657461-6C2D-4546-4900-000000000001\nstart=%d, size=%d, type=%s, name=\"EFI System\", uuid=6D657461-6C2D-4546-4900-000000000002\n",
		partStart/512, partBytes/512, espType)
	sf := cmdIn(ctx, "sfdisk", "--no-reread", "--no-tell-kernel", img.Raw)
	sf.Stdin = strings.NewReader(table)
	if out, err := sf.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sfdisk: %w\n%s", err, out)
	}
	fat := img.Raw + "@@" + strconv.Itoa(partStart)
	for _, s := range [][]string{
		{"mkfs.fat", "-F", "16", "-n", "METALESP", "--offset", strconv.Itoa(partStart / 512), img.Raw, strconv.Itoa(partBytes / 1024)},
		{"mmd", "-i", fat, "::EFI", "::EFI/BOOT"},
		{"mcopy", "-i", fat, p("BOOTX64.EFI"), "::EFI/BOOT/BOOTX64.EFI"},
	} {
		if err := Run(ctx, s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	var err error
	if img.RawSHA256, err = FileSHA256(img.Raw, cfg.SizeBytes); err != nil {
		return nil, err
	}
	vmdk := p("efi-disk1.vmdk")
	if err := Run(ctx, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", img.Raw, vmdk); err != nil {
		return nil, err
	}
	if err := writeOVA(ctx, cfg.Dir, "efi", vmdk, cfg.SizeBytes, img.OVA); err != nil {
		return nil, err
	}
	return img, nil
}

// BuildUKI joins systemd's EFI stub, a kernel, an initrd and a command
// line into one EFI application (a Unified Kernel Image) with objcopy.
// The sections are placed after the stub's last section, each aligned to
// the stub's section alignment, so no address is hard-coded.
func BuildUKI(ctx context.Context, kernel, initrd, cmdline, out string) error {
	f, err := pe.Open(EFIStub)
	if err != nil {
		return fmt.Errorf("lab: EFI stub %s: %w (apt-get install systemd-boot-efi)", EFIStub, err)
	}
	var end, align uint64 = 0, 4096
	if oh, ok := f.OptionalHeader.(*pe.OptionalHeader64); ok {
		align = uint64(oh.SectionAlignment)
	}
	for _, s := range f.Sections {
		if e := uint64(s.VirtualAddress) + uint64(s.VirtualSize); e > end {
			end = e
		}
	}
	f.Close()
	if align == 0 {
		return fmt.Errorf("lab: EFI stub %s: section alignment 0", EFIStub)
	}
	dir := filepath.Dir(out)
	osrel := filepath.Join(dir, "uki-osrel")
	cmdf := filepath.Join(dir, "uki-cmdline")
	if err := os.WriteFile(osrel, []byte("ID=metal-demo-os\nNAME=\"metal installed-OS test image\"\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(cmdf, []byte(cmdline+"\x00"), 0o644); err != nil {
		return err
	}
	args := []string{}
	vma := end
	for _, s := range []struct{ name, file string }{{".osrel", osrel}, {".cmdline", cmdf}, {".linux", kernel}, {".initrd", initrd}} {
		st, err := os.Stat(s.file)
		if err != nil {
			return err
		}
		vma = (vma + align - 1) / align * align
		args = append(args, "--add-section", s.name+"="+s.file, "--change-section-vma", fmt.Sprintf("%s=0x%x", s.name, vma))
		vma += uint64(st.Size())
	}
	_ = os.Remove(out)
	return Run(ctx, "objcopy", append(args, EFIStub, out)...)
}

// uefiVM writes the VM's QEMU wrapper for UEFI: q35 with OVMF (read-only
// code, a per-VM copy of the variable store; with SecureBoot the Secure
// Boot build, Microsoft's keys and SMM), the virtio NIC without its
// iPXE ROM (so OVMF's own PXE must chainload snponly.efi from metald's
// TFTP) and the disk as virtio-blk-pci. The BMC's chassis control appends
// -boot n|c|d (from the IPMI boot device) to the command; OVMF ignores
// -boot, so the wrapper turns it into bootindex order: n puts the NIC
// first, anything else the disk. It returns the command for the BMC.
func uefiVM(v *VM, qemu []string) ([]string, error) {
	code, varsTemplate, machine := firmware(v.Cfg.SecureBoot)
	vars := filepath.Join(v.Dir, "OVMF_VARS.fd")
	if err := copyFile(varsTemplate, vars); err != nil {
		return nil, fmt.Errorf("%w: %s (apt-get install ovmf): %v", ErrMissing, varsTemplate, err)
	}
	var base []string
	for i := 0; i < len(qemu); i++ {
		// Drop the BIOS NIC and disk; the wrapper adds them with boot
		// indexes.
		if (qemu[i] == "-device" || qemu[i] == "-drive") && i+1 < len(qemu) &&
			(strings.HasPrefix(qemu[i+1], "virtio-net-pci,") || strings.HasPrefix(qemu[i+1], "file=")) {
			i++
			continue
		}
		base = append(base, qemu[i])
	}
	base = append(base, machine...)
	base = append(base,
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
		"-drive", "if=pflash,format=raw,unit=1,file="+vars,
		"-drive", "file="+v.Disk+",if=none,id=d0,format=raw,cache=unsafe")
	var q strings.Builder
	for _, a := range base {
		q.WriteString(shellQuote(a) + " ")
	}
	script := `#!/bin/sh
# generated by metal test/lab: QEMU under OVMF; the BMC's boot device
# (-boot n|c|d, appended by chassis control) becomes bootindex order.
nic=2 disk=1
if [ "$1" = -boot ]; then
	[ "$2" = n ] && nic=1 disk=2
	shift 2
fi
echo "uefi: nic bootindex=$nic disk bootindex=$disk" >&2
exec ` + q.String() + `-device "virtio-net-pci,netdev=n0,mac=` + v.Cfg.MAC + `,romfile=,bootindex=$nic" -device "virtio-blk-pci,drive=d0,bootindex=$disk" "$@"
`
	path := filepath.Join(v.Dir, "qemu-uefi.sh")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		return nil, err
	}
	return []string{path}, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
