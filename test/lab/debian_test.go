package lab

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/testenv"
)

// needDebian skips with -short, and skips (fails under
// METAL_REQUIRE_ALL=1) without root or the image tools.
func needDebian(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Debian image (minutes when not cached) and boots it")
	}
	testenv.Root(t)
	for tool, pkg := range map[string]string{"mmdebstrap": "mmdebstrap", "sfdisk": "fdisk", "sgdisk": "gdisk",
		"mke2fs": "e2fsprogs", "debugfs": "e2fsprogs", "qemu-img": "qemu-utils", "qemu-system-x86_64": "qemu-system-x86",
		"tar": "tar", "chroot": "coreutils"} {
		testenv.Tool(t, tool, pkg)
	}
}

// debianImage builds (or finds cached in <repo>/.cache/debian) the image
// and checks that a second call returns the cached one at once.
func debianImage(t *testing.T, layout string) *DebianImage {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DebianConfig{CacheDir: filepath.Join(root, ".cache/debian"), Layout: layout, Log: tlog{t}}
	start := time.Now()
	img, err := BuildDebian(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	start = time.Now()
	again, err := BuildDebian(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cached := time.Since(start)
	if *again != *img || cached > 2*time.Second {
		t.Errorf("second BuildDebian took %v and returned %+v, want the cached %+v at once", cached, again, img)
	}
	t.Logf("%s image: first call %.1f s, cached %.3f s; %s", layout, first.Seconds(), cached.Seconds(), diskSizes(img))
	return img
}

type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

// diskSizes reports the raw disk's virtual and allocated sizes and the
// qcow2's and OVA's.
func diskSizes(img *DebianImage) string {
	s := fmt.Sprintf("raw %d MiB", img.SizeBytes>>20)
	var st syscall.Stat_t
	if syscall.Stat(img.Raw, &st) == nil {
		s += fmt.Sprintf(" (%d MiB allocated)", st.Blocks*512>>20)
	}
	for _, f := range []string{img.QCOW2, img.OVA} {
		if fi, err := os.Stat(f); err == nil {
			s += fmt.Sprintf(", %s %d MiB", filepath.Ext(f)[1:], fi.Size()>>20)
		}
	}
	return s
}

// TestDebianImage builds both layouts (concurrently: the second waits on
// the cache lock and reuses the rootfs) and reads them back offline.
func TestDebianImage(t *testing.T) {
	needDebian(t)
	for _, layout := range []string{"mbr", "gpt"} {
		t.Run(layout, func(t *testing.T) {
			t.Parallel()
			checkDebianDisk(t, debianImage(t, layout))
		})
	}
}

func checkDebianDisk(t *testing.T, img *DebianImage) {
	ctx := context.Background()
	if out, err := Output(ctx, "sfdisk", "--verify", img.Raw); err != nil || !strings.Contains(out, "No errors detected") {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}
	dump, err := Output(ctx, "sfdisk", "--dump", img.Raw)
	if err != nil {
		t.Fatal(err)
	}
	rootLine := fmt.Sprintf("%s%d : start=%12d", img.Raw, img.RootPartition, img.RootOffset/512)
	if !strings.Contains(dump, rootLine) {
		t.Errorf("sfdisk --dump: no %q\n%s", rootLine, dump)
	}
	mbr := make([]byte, 512)
	f, err := os.Open(img.Raw)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ReadAt(mbr, 0)
	f.Close()
	if err != nil || mbr[510] != 0x55 || mbr[511] != 0xaa {
		t.Errorf("sector 0: %v, signature %x", err, mbr[510:])
	}
	kernelSector := binary.LittleEndian.Uint64(mbr[0x5c:])
	if img.Layout == "gpt" {
		if out, err := Output(ctx, "sgdisk", "-v", img.Raw); err != nil || !strings.Contains(out, "No problems found") || strings.Contains(out, "Warning") {
			t.Errorf("sgdisk -v: %v\n%s", err, out)
		}
		if !strings.Contains(dump, "label: gpt") || !strings.Contains(dump, img.Raw+"14 : start=        2048, size=        6144, type=21686148-6449-6E6F-744E-656564454649") {
			t.Errorf("want a GPT with BIOS boot partition 14 at 2048:\n%s", dump)
		}
		if kernelSector != biosBootStart {
			t.Errorf("boot.img kernel sector %d, want %d", kernelSector, biosBootStart)
		}
	} else if !strings.Contains(dump, "label: dos") || !strings.Contains(dump, "type=83, bootable") || kernelSector != 1 {
		t.Errorf("want an msdos label with a bootable Linux root, core.img at 1 (boot.img says %d):\n%s", kernelSector, dump)
	}

	fs := fmt.Sprintf("%s?offset=%d", img.Raw, img.RootOffset)
	debugfs := func(req string) string {
		out, err := exec.CommandContext(ctx, "debugfs", "-R", req, fs).CombinedOutput()
		if err != nil {
			t.Errorf("debugfs -R %q: %v\n%s", req, err, out)
		}
		return string(out)
	}
	if out := debugfs("cat /etc/fstab"); !strings.Contains(out, "UUID="+img.RootUUID+" / ext4") {
		t.Errorf("/etc/fstab does not mount root by UUID %s:\n%s", img.RootUUID, out)
	}
	if out := debugfs("cat /etc/hostname"); !strings.Contains(out, "localhost\n") {
		t.Errorf("/etc/hostname: %q, want localhost (cloud-init sets the real one)", out)
	}
	if out := debugfs("cat /boot/grub/grub.cfg"); !strings.Contains(out, "root=UUID="+img.RootUUID) || !strings.Contains(out, "vmlinuz-"+img.Kernel) {
		t.Errorf("grub.cfg:\n%s", out)
	}
	// cloud-init as Debian's package ships it: its two cloud.cfg.d files,
	// no datasource list or ds-identify policy of ours, no host keys.
	if names := debugfsNames(debugfs("ls -p /etc/cloud/cloud.cfg.d")); strings.Join(names, " ") != "05_logging.cfg README" {
		t.Errorf("/etc/cloud/cloud.cfg.d holds %q, want Debian's 05_logging.cfg README only", names)
	}
	for _, l := range strings.Split(debugfs("cat /etc/cloud/cloud.cfg"), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "datasource") {
			t.Errorf("cloud.cfg sets a datasource: %q", l)
		}
	}
	if names := debugfsNames(debugfs("ls -p /etc/cloud")); slices.Contains(names, "ds-identify.cfg") {
		t.Errorf("/etc/cloud/ds-identify.cfg exists: %q", names)
	}
	if names := debugfsNames(debugfs("ls -p /etc/ssh")); strings.Contains(strings.Join(names, " "), "ssh_host_") {
		t.Errorf("the image has SSH host keys: %q", names)
	}
	if out, err := Output(ctx, "debugfs", "-R", "stat /etc/resolv.conf", fs); err == nil && !strings.Contains(out, "not found") {
		t.Errorf("the build machine's /etc/resolv.conf is in the image:\n%s", out)
	}

	if sum, err := FileSHA256(img.Raw, img.SizeBytes); err != nil || sum != img.RawSHA256 {
		t.Errorf("raw SHA-256 %s %v, recorded %s", sum, err, img.RawSHA256)
	}
	if out, err := Output(ctx, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", img.Raw, img.QCOW2); err != nil {
		t.Errorf("qemu-img compare raw qcow2: %v %s", err, out)
	}
	out, err := Output(ctx, "tar", "-tvf", img.OVA)
	if m := strings.Fields(strings.ReplaceAll(out, "\n", " ")); err != nil || len(m) == 0 || !strings.HasSuffix(strings.Split(out, "\n")[0], ".ovf") ||
		!strings.HasSuffix(strings.TrimSpace(out), ".mf") || !strings.Contains(out, ".vmdk") {
		t.Errorf("ova members %v: want the .ovf first, a .vmdk, the .mf last:\n%s", err, out)
	}
}

// TestDebianBoots boots the GPT image (a qcow2 overlay on the cached raw
// disk, no NIC, no config drive) to the serial login prompt: SeaBIOS →
// boot.img → core.img in the BIOS boot partition → grub.cfg → Debian's
// cloud kernel and initramfs → systemd → serial getty.
func TestDebianBoots(t *testing.T) {
	needDebian(t)
	img := debianImage(t, "gpt")
	dir := t.TempDir()
	overlay, serial := filepath.Join(dir, "disk.qcow2"), filepath.Join(dir, "serial.log")
	ctx := context.Background()
	if err := Run(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-b", img.Raw, "-F", "raw", overlay); err != nil {
		t.Fatal(err)
	}
	vctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(vctx, "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "1",
		"-display", "none", "-monitor", "none", "-serial", "file:"+serial, "-nic", "none",
		"-drive", "file="+overlay+",if=virtio,format=qcow2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	start := time.Now()
	for {
		b, _ := os.ReadFile(serial)
		if bytes.Contains(b, []byte("login:")) {
			t.Logf("login prompt after %.1f s (%s)", time.Since(start).Seconds(), cloudInitLine(b))
			return
		}
		if vctx.Err() != nil {
			t.Fatalf("no login prompt within 3 min; serial:\n%s", b)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// cloudInitLine is the console's last cloud-init line, for the log.
func cloudInitLine(b []byte) string {
	last := "no cloud-init line on the console"
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(strings.ToLower(l), "cloud-init") {
			last = strings.TrimSpace(l)
		}
	}
	return last
}

// debugfsNames are the entry names (without . and ..) of debugfs ls -p
// output (/inode/mode/uid/gid/name/size/ lines).
func debugfsNames(out string) []string {
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Split(l, "/"); len(f) >= 7 && f[5] != "." && f[5] != ".." {
			names = append(names, f[5])
		}
	}
	slices.Sort(names)
	return names
}
