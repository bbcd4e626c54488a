package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MBR is syslinux's master boot record (Debian syslinux-common).
const MBR = "/usr/lib/syslinux/mbr/mbr.bin"

// ImageConfig describes the bootable "installed OS" test disk.
type ImageConfig struct {
	// Dir receives the files; required.
	Dir string
	// KernelDir is the fetched Debian kernel (Kernel); required.
	KernelDir string
	// Init is the static metal-demo-os binary, the initramfs's /init;
	// required.
	Init string
	// MetadataURL goes on the kernel command line (metal.metadata=) so
	// the OS can ask metald for its hostname; optional.
	MetadataURL string
	// SizeBytes is the disk's virtual size (default 64 MiB; the FAT16
	// boot partition takes 48 MiB from 1 MiB on, the rest stays zero).
	SizeBytes int64
	// QCOW2Only skips the OVA, VHD and qcow2.zst (for large disks whose
	// other conversions cost time).
	QCOW2Only bool
	// FillBytes of incompressible pseudo-random data are written after
	// the boot partition (for throughput benchmarks; 0 for none).
	FillBytes int64
}

// Image is the test disk in every format the e2e tests upload.
type Image struct {
	Raw, OVA, VHD, QCOW2ZST, QCOW2 string
	// RawSHA256 is the SHA-256 of the raw disk (SizeBytes bytes).
	RawSHA256 string
	SizeBytes int64
}

const partStart = 1 << 20

// BuildImage makes the raw disk without loop devices (sfdisk, mkfs.fat
// --offset, mcopy, syslinux --offset, mbr.bin into the first 440 bytes)
// and converts it: a streamOptimized VMDK in an OVA (descriptor first,
// SHA256 manifest last), a dynamic VHD, and a zstd-compressed qcow2.
func BuildImage(ctx context.Context, cfg ImageConfig) (*Image, error) {
	if cfg.Dir == "" || cfg.KernelDir == "" || cfg.Init == "" {
		return nil, fmt.Errorf("lab: image Dir, KernelDir and Init are required")
	}
	if cfg.SizeBytes == 0 {
		cfg.SizeBytes = 64 << 20
	}
	const partBytes = 48 << 20
	if cfg.SizeBytes < partStart+partBytes {
		return nil, fmt.Errorf("lab: image size %d below %d", cfg.SizeBytes, partStart+partBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	p := func(n string) string { return filepath.Join(cfg.Dir, n) }
	img := &Image{Raw: p("os.raw"), OVA: p("os.ova"), VHD: p("os.vhd"), QCOW2: p("os.qcow2"), QCOW2ZST: p("os.qcow2.zst"), SizeBytes: cfg.SizeBytes}

	if err := buildInitrd(cfg.KernelDir, cfg.Init, []string{"virtio_pci", "virtio_net", "virtio_blk"}, p("initrd")); err != nil {
		return nil, err
	}
	appendLine := "initrd=initrd quiet"
	if cfg.MetadataURL != "" {
		appendLine += " metal.metadata=" + cfg.MetadataURL
	}
	appendLine += " console=ttyS0"
	sysCfg := "SERIAL 0 115200\nDEFAULT metal\nPROMPT 0\nTIMEOUT 1\nLABEL metal\n  KERNEL vmlinuz\n  APPEND " + appendLine + "\n"
	if err := os.WriteFile(p("syslinux.cfg"), []byte(sysCfg), 0o644); err != nil {
		return nil, err
	}
	_ = os.Remove(img.Raw)
	if err := os.WriteFile(img.Raw, nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.Truncate(img.Raw, cfg.SizeBytes); err != nil {
		return nil, err
	}
	table := fmt.Sprintf("label: dos\nstart=%d, size=%d, type=6, bootable\n", partStart/512, partBytes/512)
	sf := cmdIn(ctx, "sfdisk", "--no-reread", "--no-tell-kernel", img.Raw)
	sf.Stdin = strings.NewReader(table)
	if out, err := sf.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sfdisk: %w\n%s", err, out)
	}
	off := fmt.Sprint(partStart)
	steps := [][]string{
		{"mkfs.fat", "-F", "16", "-n", "METALOS", "--offset", fmt.Sprint(partStart / 512), img.Raw, fmt.Sprint(partBytes / 1024)},
		{"mcopy", "-i", img.Raw + "@@" + off, filepath.Join(cfg.KernelDir, "vmlinuz"), p("initrd"), p("syslinux.cfg"), "::"},
		{"syslinux", "--offset", off, "--install", img.Raw},
	}
	for _, s := range steps {
		if err := Run(ctx, s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	mbr, err := os.ReadFile(MBR)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (apt-get install syslinux-common)", ErrMissing, MBR)
	}
	if len(mbr) > 440 {
		mbr = mbr[:440]
	}
	f, err := os.OpenFile(img.Raw, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteAt(mbr, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if cfg.FillBytes > 0 {
		if err := fill(img.Raw, partStart+partBytes, cfg.FillBytes, cfg.SizeBytes); err != nil {
			return nil, err
		}
	}
	if img.RawSHA256, err = FileSHA256(img.Raw, cfg.SizeBytes); err != nil {
		return nil, err
	}

	if cfg.QCOW2Only {
		img.OVA, img.VHD, img.QCOW2ZST = "", "", ""
		return img, Run(ctx, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", img.Raw, img.QCOW2)
	}
	vmdk := p("os-disk1.vmdk")
	for _, c := range [][]string{
		{"qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", img.Raw, vmdk},
		{"qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", img.Raw, img.VHD},
		{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", img.Raw, img.QCOW2},
		{"zstd", "-q", "-f", "-3", img.QCOW2, "-o", img.QCOW2ZST},
	} {
		if err := Run(ctx, c[0], c[1:]...); err != nil {
			return nil, err
		}
	}
	if err := writeOVA(ctx, cfg.Dir, "os", vmdk, cfg.SizeBytes, img.OVA); err != nil {
		return nil, err
	}
	return img, nil
}

const ovfTemplate = `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>
    <File ovf:id="file1" ovf:href="%s" ovf:size="%d"/>
  </References>
  <DiskSection>
    <Info>Virtual disks</Info>
    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="%d" ovf:capacityAllocationUnits="byte" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="%s">
    <Info>%s</Info>
    <Name>%s</Name>
  </VirtualSystem>
</Envelope>
`

// writeOVA packs name.ovf, the VMDK and name.mf (SHA256) into a ustar tar.
func writeOVA(ctx context.Context, dir, name, vmdk string, capacity int64, out string) error {
	return writeOVASystem(ctx, dir, name, vmdk, capacity, out, "metal-installed-os", "metal's end-to-end test OS")
}

// writeOVASystem is writeOVA with the OVF VirtualSystem's id and info.
func writeOVASystem(ctx context.Context, dir, name, vmdk string, capacity int64, out, system, info string) error {
	st, err := os.Stat(vmdk)
	if err != nil {
		return err
	}
	disk := filepath.Base(vmdk)
	ovf := name + ".ovf"
	if err := os.WriteFile(filepath.Join(dir, ovf), []byte(fmt.Sprintf(ovfTemplate, disk, st.Size(), capacity, system, info, system)), 0o644); err != nil {
		return err
	}
	var mf strings.Builder
	for _, m := range []string{ovf, disk} {
		sum, err := FileSHA256(filepath.Join(dir, m), -1)
		if err != nil {
			return err
		}
		fmt.Fprintf(&mf, "SHA256(%s)= %s\n", m, sum)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".mf"), []byte(mf.String()), 0o644); err != nil {
		return err
	}
	_ = os.Remove(out)
	return Run(ctx, "tar", "--format=ustar", "-C", dir, "-cf", out, ovf, disk, name+".mf")
}

// FileSHA256 hashes the first n bytes of a file (all of it when n < 0);
// a file shorter than n is an error.
func FileSHA256(path string, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	var r io.Reader = f
	if n >= 0 {
		r = io.LimitReader(f, n)
	}
	got, err := io.Copy(h, r)
	if err != nil {
		return "", err
	}
	if n >= 0 && got != n {
		return "", fmt.Errorf("%s: %d bytes, want at least %d", path, got, n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fill writes n pseudo-random bytes (ChaCha8, fixed seed) at off.
func fill(path string, off, n, size int64) error {
	if off+n > size {
		return fmt.Errorf("lab: fill of %d bytes at %d exceeds the disk (%d)", n, off, size)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{'m', 'e', 't', 'a', 'l'})
	buf := make([]byte, 1<<20)
	for done := int64(0); done < n; {
		k := min(int64(len(buf)), n-done)
		_, _ = rng.Read(buf[:k])
		if _, err := f.WriteAt(buf[:k], off+done); err != nil {
			f.Close()
			return err
		}
		done += k
	}
	return f.Close()
}
