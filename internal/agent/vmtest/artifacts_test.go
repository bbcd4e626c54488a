package vmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/metal-iaas/metal/internal/initramfs"
)

var (
	artOnce          sync.Once
	artDir           string
	artKdir, artInit string
	artErr           error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if artDir != "" {
		os.RemoveAll(artDir)
	}
	os.Exit(code)
}

// artifacts fetches the kernel (cached in .cache/kernel across runs),
// builds the static agent and the initramfs once per test binary.
func artifacts(t *testing.T) (kernelDir, initrd string) {
	t.Helper()
	artOnce.Do(func() {
		root := repoRoot(t)
		artKdir = filepath.Join(root, ".cache/kernel")
		if out, err := exec.Command(filepath.Join(root, "scripts/fetch-kernel.sh"), artKdir).CombinedOutput(); err != nil {
			artErr = fmt.Errorf("fetch-kernel.sh: %v\n%s", err, out)
			return
		}
		if artDir, artErr = os.MkdirTemp("", "metal-vmtest-"); artErr != nil {
			return
		}
		agentBin := filepath.Join(artDir, "metal-agent")
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", agentBin, "./cmd/metal-agent")
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			artErr = fmt.Errorf("build agent: %v\n%s", err, out)
			return
		}
		mdir, err := initramfs.ModulesDir(artKdir)
		if err != nil {
			artErr = err
			return
		}
		artInit = filepath.Join(artDir, "initrd")
		f, err := os.Create(artInit)
		if err != nil {
			artErr = err
			return
		}
		defer f.Close()
		_, artErr = initramfs.Build(f, initramfs.Options{Agent: agentBin, ModulesDir: mdir})
	})
	if artErr != nil {
		t.Fatal(artErr)
	}
	return artKdir, artInit
}

// TestBzImageBootsAgent boots the bzImage that iPXE serves to machines
// (not the uncompressed vmlinux the other test uses for speed) with the
// initramfs and waits for the agent to parse its command line: it must
// report a missing metal.url by name.
func TestBzImageBootsAgent(t *testing.T) {
	need(t, have("qemu-system-x86_64"), "qemu-system-x86_64", "apt-get install -y qemu-system-x86")
	for _, tool := range []string{"apt-get", "dpkg", "depmod"} {
		need(t, have(tool), tool, "apt-get install -y apt dpkg kmod")
	}
	kdir, initrd := artifacts(t)
	serial := filepath.Join(t.TempDir(), "serial.log")
	cmd := exec.Command("qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "256", "-smp", "1",
		"-kernel", filepath.Join(kdir, "vmlinuz"), "-initrd", initrd, "-append", "metal.mac=52:54:00:00:00:01 quiet console=ttyS0",
		"-nographic", "-monitor", "none", "-serial", "file:"+serial, "-nic", "none", "-no-reboot")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	want := []byte("cannot start; rebooting in 60 s")
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		s, _ := os.ReadFile(serial)
		if bytes.Contains(s, want) {
			if !bytes.Contains(s, []byte("metal.url missing")) {
				t.Fatalf("agent failed for another reason:\n%s", s)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s, _ := os.ReadFile(serial)
	t.Fatalf("no agent error on the console within 90 s:\n%s", tail(string(s), 8000))
}
