package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// debianBuilder versions BuildDebian's output: bump it when the build
// changes, so that cached images are rebuilt.
const debianBuilder = "debian-1"

// DebianPackages are installed into the stock image (mmdebstrap minbase,
// no recommends).
var DebianPackages = []string{
	"linux-image-cloud-amd64", "cloud-init", "cloud-guest-utils", "e2fsprogs", "grub-pc",
	"ifupdown", "isc-dhcp-client", "openssh-server", "systemd-sysv", "udev", "netbase", "sudo",
}

// debianDpkgOpts keep the image small (and later installs into it).
var debianDpkgOpts = []string{
	"path-exclude=/usr/share/man/*", "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
	"path-exclude=/usr/share/locale/*", "path-exclude=/usr/share/info/*",
}

// DebianConfig describes a stock Debian 12 cloud image.
type DebianConfig struct {
	// CacheDir holds the images and the mmdebstrap rootfs; required.
	CacheDir string
	// Layout is "mbr" (msdos label, root = partition 1 from 1 MiB) or
	// "gpt" (BIOS boot partition 14 at 1–4 MiB, root = partition 1 after
	// it; GRUB's BIOS-on-GPT). Default "gpt".
	Layout string
	// SizeBytes is the virtual disk size (default 2 GiB); root fills it.
	SizeBytes int64
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// DebianImage is a built (or cached) stock Debian image.
type DebianImage struct {
	Raw, QCOW2, OVA string
	// RawSHA256 is the SHA-256 of the raw disk (SizeBytes bytes).
	RawSHA256 string
	SizeBytes int64
	Layout    string
	// RootPartition is the root partition's number; RootOffset its byte
	// offset in the disk.
	RootPartition int
	RootOffset    int64
	// RootUUID is the ext4 filesystem UUID (/etc/fstab, root=UUID=).
	RootUUID string
	// Kernel is the installed kernel release.
	Kernel string
}

// Disk geometry (512-byte sectors).
const (
	biosBootStart, biosBootSectors = 2048, 6144 // GPT partition 14, like Debian's images
	mbrRootStart, gptRootStart     = 2048, 8192
)

// BuildDebian builds a stock Debian bookworm cloud image — nothing
// metal-specific inside: cloud-init keeps Debian's datasource defaults —
// or returns the cached one at once. Root, no loop devices or mounts:
// mmdebstrap into a tarball (shared by the layouts), mke2fs -d into the
// partition, GRUB's boot.img and core.img written by hand. Concurrent
// callers (other processes too) serialise on a lock in CacheDir.
func BuildDebian(ctx context.Context, cfg DebianConfig) (*DebianImage, error) {
	if cfg.CacheDir == "" {
		return nil, errors.New("lab: debian CacheDir is required")
	}
	if cfg.Layout == "" {
		cfg.Layout = "gpt"
	}
	if cfg.Layout != "mbr" && cfg.Layout != "gpt" {
		return nil, fmt.Errorf("lab: debian layout %q: want mbr or gpt", cfg.Layout)
	}
	if cfg.SizeBytes == 0 {
		cfg.SizeBytes = 2 << 30
	}
	if cfg.SizeBytes < 1<<30 || cfg.SizeBytes%(1<<20) != 0 {
		return nil, fmt.Errorf("lab: debian size %d: want a whole number of MiB, at least 1 GiB", cfg.SizeBytes)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
		return nil, err
	}
	sources := debianSources()
	rkey := debHash(debianBuilder, strings.Join(DebianPackages, ","), strings.Join(debianDpkgOpts, ","), sources)
	key := debHash(rkey, cfg.Layout, fmt.Sprint(cfg.SizeBytes))
	entry := fmt.Sprintf("%s-%dM-", cfg.Layout, cfg.SizeBytes>>20)
	final := filepath.Join(cfg.CacheDir, entry+key[:12])
	if img, err := loadDebian(final); err == nil {
		return img, nil
	}
	unlock, err := debLock(ctx, filepath.Join(cfg.CacheDir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if img, err := loadDebian(final); err == nil {
		return img, nil // built by another process while we waited
	}
	start := time.Now()
	tarball := filepath.Join(cfg.CacheDir, "rootfs-"+rkey[:12]+".tar")
	if _, err := os.Stat(tarball); err != nil {
		fmt.Fprintf(cfg.Log, "lab: debian: mmdebstrap bookworm (%d packages)\n", len(DebianPackages))
		if err := mmdebstrap(ctx, sources, tarball); err != nil {
			return nil, err
		}
		debPrune(cfg.CacheDir, "rootfs-", filepath.Base(tarball))
	}
	tmp, err := os.MkdirTemp(cfg.CacheDir, ".build-"+entry)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if _, err := buildDebianDisk(ctx, cfg, tarball, tmp, key); err != nil {
		return nil, fmt.Errorf("lab: debian %s image: %w", cfg.Layout, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, err
	}
	debPrune(cfg.CacheDir, entry, filepath.Base(final))
	fmt.Fprintf(cfg.Log, "lab: debian: %s image built in %.0f s\n", cfg.Layout, time.Since(start).Seconds())
	return loadDebian(final)
}

// buildDebianDisk makes disk.raw, disk.qcow2 and disk.ova in dir and
// records them in image.json (paths relative to dir).
func buildDebianDisk(ctx context.Context, cfg DebianConfig, tarball, dir, key string) (*DebianImage, error) {
	img := &DebianImage{Raw: "disk.raw", QCOW2: "disk.qcow2", OVA: "disk.ova", SizeBytes: cfg.SizeBytes,
		Layout: cfg.Layout, RootPartition: 1, RootOffset: mbrRootStart * 512, RootUUID: debUUID(key, "root-fs")}
	if cfg.Layout == "gpt" {
		img.RootOffset = gptRootStart * 512
	}
	root, raw, vmdk := filepath.Join(dir, "root"), filepath.Join(dir, img.Raw), filepath.Join(dir, "disk-disk1.vmdk")
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, err
	}
	if _, err := debRun(ctx, "extract rootfs", "", "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root, "-xpf", tarball); err != nil {
		return nil, err
	}
	var err error
	if img.Kernel, err = configureDebian(ctx, root, img.RootUUID); err != nil {
		return nil, err
	}
	// GRUB's core.img from the image's own grub-mkimage: its load.cfg
	// finds root by UUID, then normal.mod and grub.cfg load from
	// /boot/grub. Written to a file (grub-mkimage fsyncs its output,
	// which fails on a pipe) that leaves the rootfs before mke2fs.
	if _, err := debRun(ctx, "grub-mkimage", "", "chroot", root, "grub-mkimage", "-O", "i386-pc", "-p", "/boot/grub",
		"-c", "/boot/grub/i386-pc/load.cfg", "-o", "/core.img", "biosdisk", "part_msdos", "part_gpt", "ext2", "search"); err != nil {
		return nil, err
	}
	core, err := os.ReadFile(filepath.Join(root, "core.img"))
	if err != nil {
		return nil, err
	}
	if err := os.Remove(filepath.Join(root, "core.img")); err != nil {
		return nil, err
	}
	boot, err := os.ReadFile(filepath.Join(root, "usr/lib/grub/i386-pc/boot.img"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(raw, nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.Truncate(raw, cfg.SizeBytes); err != nil {
		return nil, err
	}
	// Root fills the disk (GPT: up to the last MiB, which holds the
	// backup table), so growpart has work only on a larger target disk.
	start := img.RootOffset / 512
	sectors := cfg.SizeBytes/512 - start
	table := fmt.Sprintf("label: dos\nlabel-id: 0x%s\nunit: sectors\nstart=%d, size=%d, type=83, bootable\n", key[:8], start, sectors)
	if cfg.Layout == "gpt" {
		sectors -= 2048
		table = fmt.Sprintf("label: gpt\nlabel-id: %s\nunit: sectors\nfirst-lba: 34\n"+
			"/dev/disk14 : start=%d, size=%d, type=21686148-6449-6E6F-744E-656564454649, uuid=%s\n"+
			"/dev/disk1 : start=%d, size=%d, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=%s\n",
			debUUID(key, "disk"), biosBootStart, biosBootSectors, debUUID(key, "bios-boot"), start, sectors, debUUID(key, "root-part"))
	}
	if _, err := debRun(ctx, "sfdisk", table, "sfdisk", "--no-reread", "--no-tell-kernel", raw); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "lab: debian: mke2fs -d (%s root, %d MiB)\n", cfg.Layout, sectors/2048)
	if _, err := debRun(ctx, "mke2fs", "", "mke2fs", "-q", "-F", "-t", "ext4", "-d", root, "-U", img.RootUUID, "-L", "root",
		"-E", fmt.Sprintf("offset=%d,hash_seed=%s", img.RootOffset, debUUID(key, "hash-seed")), raw, fmt.Sprintf("%dk", sectors/2)); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(root); err != nil {
		return nil, err
	}
	if err := writeGRUB(raw, cfg.Layout, boot, core); err != nil {
		return nil, err
	}
	if img.RawSHA256, err = FileSHA256(raw, cfg.SizeBytes); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "lab: debian: converting %s to qcow2 and OVA\n", cfg.Layout)
	for _, to := range [][]string{{"qcow2", filepath.Join(dir, img.QCOW2)}, {"vmdk", "-o", "subformat=streamOptimized", vmdk}} {
		if _, err := debRun(ctx, "qemu-img "+to[0], "", "qemu-img", append([]string{"convert", "-f", "raw", "-O", to[0], raw}, to[1:]...)...); err != nil {
			return nil, err
		}
	}
	if err := writeOVASystem(ctx, dir, "disk", vmdk, cfg.SizeBytes, filepath.Join(dir, img.OVA),
		"debian-12-genericcloud-amd64", "Debian 12 (bookworm) cloud image"); err != nil {
		return nil, err
	}
	for _, f := range []string{vmdk, "disk.ovf", "disk.mf"} {
		_ = os.Remove(filepath.Join(dir, filepath.Base(f)))
	}
	b, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return nil, err
	}
	return img, os.WriteFile(filepath.Join(dir, "image.json"), b, 0o644)
}

// configureDebian makes the rootfs look like Debian's cloud images and
// writes GRUB's files; it returns the kernel release.
func configureDebian(ctx context.Context, root, uuid string) (string, error) {
	vmlinuz, _ := filepath.Glob(filepath.Join(root, "boot/vmlinuz-*"))
	if len(vmlinuz) != 1 {
		return "", fmt.Errorf("configure: want one kernel in /boot, found %v", vmlinuz)
	}
	kernel := strings.TrimPrefix(filepath.Base(vmlinuz[0]), "vmlinuz-")
	cmdline := "console=tty0 console=ttyS0,115200"
	files := map[string]string{
		"etc/fstab":    fmt.Sprintf("UUID=%s / ext4 rw,discard,errors=remount-ro 0 1\n", uuid),
		"etc/hostname": "localhost\n",
		"etc/hosts": "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n" +
			"ff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n",
		// cloud-init writes the rest (interfaces.d/50-cloud-init).
		"etc/network/interfaces": "# interfaces(5) file used by ifup(8) and ifdown(8)\nauto lo\niface lo inet loopback\n\n" +
			"# Include files from /etc/network/interfaces.d:\nsource /etc/network/interfaces.d/*\n",
		"etc/machine-id": "",
		// Host keys come from cloud-init or, without a datasource, here.
		"etc/systemd/system/ssh.service.d/hostkeys.conf": "[Service]\nExecStartPre=-/usr/bin/ssh-keygen -A\n",
		// For grub-mkconfig when a kernel update runs update-grub.
		"etc/default/grub.d/10_serial.cfg": "GRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX=\"" + cmdline + "\"\n" +
			"GRUB_TERMINAL=\"console serial\"\nGRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"\n",
		"boot/grub/i386-pc/load.cfg": "search --no-floppy --fs-uuid --set=root " + uuid + "\nset prefix=($root)/boot/grub\n",
		"boot/grub/grub.cfg": "serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n" +
			"set timeout=1\nset default=0\ninsmod part_msdos\ninsmod part_gpt\ninsmod ext2\n" +
			"search --no-floppy --fs-uuid --set=root " + uuid + "\n" +
			"menuentry 'Debian GNU/Linux 12 (bookworm)' {\n\tinsmod gzio\n" +
			"\tlinux /boot/vmlinuz-" + kernel + " root=UUID=" + uuid + " ro " + cmdline + "\n" +
			"\tinitrd /boot/initrd.img-" + kernel + "\n}\n",
	}
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return "", err
		}
	}
	// Nothing of the build machine stays: its resolver and apt options,
	// and no host keys shared by every machine deployed from the image.
	gone, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
	for _, f := range []string{"etc/resolv.conf", "etc/apt/apt.conf.d/99mmdebstrap", "var/lib/dbus/machine-id"} {
		gone = append(gone, filepath.Join(root, f))
	}
	for _, f := range gone {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	// GRUB's modules where core.img's prefix points (grub-install's job).
	if _, err := debRun(ctx, "copy GRUB modules", "", "cp", "-a", "-T", filepath.Join(root, "usr/lib/grub/i386-pc"), filepath.Join(root, "boot/grub/i386-pc")); err != nil {
		return "", err
	}
	return kernel, nil
}

// writeGRUB does grub-bios-setup's work: boot.img's code (never bytes
// 440–511, the partition table) into sector 0 and core.img after it (MBR)
// or into the BIOS boot partition (GPT, with boot.img's kernel sector and
// diskboot's blocklist pointed at it).
func writeGRUB(raw, layout string, boot, core []byte) error {
	if len(boot) != 512 || len(core) < 512 {
		return fmt.Errorf("grub: boot.img %d bytes, core.img %d", len(boot), len(core))
	}
	boot = append([]byte(nil), boot[:440]...)
	core = append([]byte(nil), core...)
	lba, room := int64(1), int64(mbrRootStart-1)
	if layout == "gpt" {
		lba, room = biosBootStart, biosBootSectors
		binary.LittleEndian.PutUint64(boot[0x5c:], uint64(lba))
		binary.LittleEndian.PutUint64(core[0x1f4:], uint64(lba+1))
	}
	if int64(len(core)) > room*512 {
		return fmt.Errorf("grub: core.img (%d bytes) does not fit in %d sectors", len(core), room)
	}
	if boot[0x66] == 0xeb { // hard disk: the drive check's jmp becomes two nops
		boot[0x66], boot[0x67] = 0x90, 0x90
	}
	f, err := os.OpenFile(raw, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(boot, 0)
	if err == nil {
		_, err = f.WriteAt(core, lba*512)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// mmdebstrap writes the bookworm rootfs tarball (atomically).
func mmdebstrap(ctx context.Context, sources, out string) error {
	args := []string{"--variant=minbase", "--mode=root", "--format=tar", "--include=" + strings.Join(DebianPackages, ","),
		"--aptopt=Acquire::Check-Valid-Until \"false\"", "--aptopt=APT::Install-Recommends \"false\""}
	for _, o := range debianDpkgOpts {
		args = append(args, "--dpkgopt="+o)
	}
	tmp := out + ".tmp"
	if _, err := debRun(ctx, "mmdebstrap", sources, "mmdebstrap", append(args, "bookworm", tmp, "-")...); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, out)
}

// debianSources are the host's bookworm apt sources (deb822 files in
// /etc/apt/sources.list.d: the mirror that works here) as sources.list
// lines; deb.debian.org without any.
func debianSources() string {
	var lines []string
	add := func(uri string, suites, comps []string) {
		for _, s := range suites {
			if s == "bookworm" || s == "bookworm-updates" || s == "bookworm-security" {
				lines = append(lines, fmt.Sprintf("deb %s %s %s", uri, s, strings.Join(comps, " ")))
			}
		}
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, stanza := range strings.Split(string(b), "\n\n") {
			kv := map[string][]string{}
			sc := bufio.NewScanner(strings.NewReader(stanza))
			for sc.Scan() {
				if k, v, ok := strings.Cut(sc.Text(), ":"); ok && !strings.HasPrefix(k, "#") && !strings.HasPrefix(k, " ") {
					kv[strings.ToLower(k)] = strings.Fields(v)
				}
			}
			if !slices.Contains(kv["types"], "deb") || slices.Contains(kv["enabled"], "no") {
				continue
			}
			for _, uri := range kv["uris"] {
				add(uri, kv["suites"], kv["components"])
			}
		}
	}
	if len(lines) == 0 {
		lines = []string{"deb http://deb.debian.org/debian bookworm main", "deb http://deb.debian.org/debian bookworm-updates main",
			"deb http://deb.debian.org/debian-security bookworm-security main"}
	}
	return strings.Join(lines, "\n") + "\n"
}

// loadDebian reads a finished image directory.
func loadDebian(dir string) (*DebianImage, error) {
	b, err := os.ReadFile(filepath.Join(dir, "image.json"))
	if err != nil {
		return nil, err
	}
	img := &DebianImage{}
	if err := json.Unmarshal(b, img); err != nil {
		return nil, err
	}
	for _, p := range []*string{&img.Raw, &img.QCOW2, &img.OVA} {
		*p = filepath.Join(dir, *p)
		if _, err := os.Stat(*p); err != nil {
			return nil, err
		}
	}
	return img, nil
}

// debLock takes an exclusive flock, polling so ctx can end the wait.
func debLock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// debPrune removes cache entries named prefix* other than keep (outputs of
// an older builder version or package list) and build leftovers.
func debPrune(dir, prefix, keep string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		if (strings.HasPrefix(n, prefix) && n != keep) || strings.HasPrefix(n, ".build-"+prefix) {
			_ = os.RemoveAll(filepath.Join(dir, n))
		}
	}
}

// debRun runs one build step with stdin and returns its stdout; its
// error names the step and ends with the tail of its output. Cancelling
// sends SIGTERM first (mmdebstrap then unmounts its chroot's /proc).
func debRun(ctx context.Context, step, stdin string, name string, args ...string) ([]byte, error) {
	var stdout, both bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), io.MultiWriter(&stdout, &both), &both
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Run(); err != nil {
		tail := strings.Split(strings.TrimSpace(both.String()), "\n")
		tail = tail[max(0, len(tail)-25):]
		return nil, fmt.Errorf("%s (%s %s): %w\n%s", step, name, strings.Join(args, " "), err, strings.Join(tail, "\n"))
	}
	return stdout.Bytes(), nil
}

func debHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// debUUID is a fixed random-looking (version 4 form) UUID for key and use.
func debUUID(key, use string) string {
	b, _ := hex.DecodeString(debHash(key, use)[:32])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
