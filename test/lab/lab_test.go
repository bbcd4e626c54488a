package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/testenv"
)

// need skips, or fails under METAL_REQUIRE_ALL=1, when the lab cannot run.
func need(t *testing.T) {
	t.Helper()
	err := Check()
	if err == nil {
		return
	}
	testenv.Require(t, false, err.Error())
}

// TestImageBoots builds the installed-OS disk and boots the raw disk in
// QEMU (SeaBIOS → syslinux MBR → ldlinux → Debian kernel → /init): the
// console must show both markers (hostname unknown: no metadata URL).
// It also checks the conversions read back equal with qemu-img compare.
func TestImageBoots(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	need(t)
	ctx, dir, img := testImage(t, BuildImage)
	for _, c := range [][]string{
		{"-f", "raw", "-F", "qcow2", img.Raw, img.QCOW2},
		{"-f", "raw", "-F", "vpc", img.Raw, img.VHD},
		{"-f", "raw", "-F", "vmdk", img.Raw, filepath.Join(dir, "img", "os-disk1.vmdk")},
	} {
		if out, err := Output(ctx, "qemu-img", append([]string{"compare"}, c...)...); err != nil {
			t.Errorf("qemu-img compare %v: %v %s", c, err, out)
		}
	}
	if out, err := Output(ctx, "tar", "-tf", img.OVA); err != nil || strings.Fields(out)[0] != "os.ovf" || !strings.HasSuffix(strings.TrimSpace(out), "os.mf") {
		t.Errorf("ova members %q %v: want os.ovf first and os.mf last", out, err)
	}
	serial := filepath.Join(dir, "serial.log")
	vctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(vctx, "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "384",
		"-display", "none", "-monitor", "none", "-serial", "file:"+serial, "-nic", "none",
		"-drive", "file="+img.Raw+",if=virtio,format=raw,snapshot=on", "-boot", "c")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	start := time.Now()
	for {
		b, _ := os.ReadFile(serial)
		if strings.Contains(string(b), "METAL-INSTALLED-OS-OK hostname=unknown") {
			if !strings.Contains(string(b), "METAL-INSTALLED-OS-BOOTED kernel=6.") {
				t.Errorf("no boot marker with the kernel release:\n%s", b)
			}
			t.Logf("installed OS up after %.1f s", time.Since(start).Seconds())
			return
		}
		if vctx.Err() != nil {
			t.Fatalf("no marker within 3 min; serial:\n%s", b)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestCleanupUnknownNamespace(t *testing.T) {
	Cleanup("metal-lab-does-not-exist") // must not fail or hang
	if _, err := os.Stat("/var/run/netns/metal-lab-does-not-exist"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("cleanup created a namespace")
	}
}

// TestCleanupStale removes a namespace left by a process that is gone and
// keeps one whose process runs.
func TestCleanupStale(t *testing.T) {
	if testing.Short() {
		t.Skip("creates network namespaces")
	}
	need(t)
	ctx := context.Background()
	// pid 0x7ffffffe is above pid_max: no such process.
	dead, alive := "metal-labtest-2147483646-1", fmt.Sprintf("metal-labtest-%d-1", os.Getppid())
	for _, n := range []string{dead, alive} {
		Cleanup(n)
		if err := Run(ctx, "ip", "netns", "add", n); err != nil {
			t.Fatal(err)
		}
	}
	defer Cleanup(alive)
	defer Cleanup(dead)
	CleanupStale("metal-labtest-")
	if _, err := os.Stat("/var/run/netns/" + dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale namespace %s still exists", dead)
	}
	if _, err := os.Stat("/var/run/netns/" + alive); err != nil {
		t.Errorf("namespace %s of a running process was removed: %v", alive, err)
	}
}

// testImage builds the agent-free installed-OS disk with build (BuildImage
// or BuildEFIImage) from the cached kernel and freshly built binaries.
func testImage(t *testing.T, build func(context.Context, ImageConfig) (*Image, error)) (context.Context, string, *Image) {
	t.Helper()
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
	img, err := build(ctx, ImageConfig{Dir: filepath.Join(dir, "img"), KernelDir: kdir, Init: bins.InstalledInit})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, dir, img
}
