package vmtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/metal-iaas/metal/internal/initramfs"
)

// BenchmarkBootToInit measures QEMU (TCG) start to the agent's first log
// line on the serial console, for the bzImage that iPXE boots (the
// anchor) and the uncompressed ELF vmlinux (PVH entry) that -kernel can
// boot directly. Report the ratio vmlinux/bzImage.
//
//	go test -run '^$' -bench BootToInit -benchtime 3x ./internal/agent/vmtest
func BenchmarkBootToInit(b *testing.B) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		b.Skip("SKIP: missing qemu-system-x86_64: apt-get install -y qemu-system-x86")
	}
	root := repoRootB(b)
	kdir := filepath.Join(root, ".cache/kernel")
	if out, err := exec.Command(filepath.Join(root, "scripts/fetch-kernel.sh"), kdir).CombinedOutput(); err != nil {
		b.Fatalf("fetch-kernel: %v\n%s", err, out)
	}
	dir := b.TempDir()
	agentBin := filepath.Join(dir, "metal-agent")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", agentBin, "./cmd/metal-agent")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build agent: %v\n%s", err, out)
	}
	mdir, err := initramfs.ModulesDir(kdir)
	if err != nil {
		b.Fatal(err)
	}
	initrd := filepath.Join(dir, "initrd")
	f, _ := os.Create(initrd)
	if _, err := initramfs.Build(f, initramfs.Options{Agent: agentBin, ModulesDir: mdir}); err != nil {
		b.Fatal(err)
	}
	f.Close()
	for _, k := range []struct{ name, file string }{{"bzImage", "vmlinuz"}, {"vmlinux", "vmlinux"}} {
		b.Run(k.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				bootOnce(b, filepath.Join(kdir, k.file), initrd, dir)
			}
		})
	}
}

func bootOnce(b *testing.B, kernel, initrd, dir string) {
	serial := filepath.Join(dir, "bench-serial.log")
	os.Remove(serial)
	cmd := exec.Command("qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "384", "-smp", "1",
		"-kernel", kernel, "-initrd", initrd, "-append", "metal.url=http://192.0.2.1:1 quiet console=ttyS0",
		"-nographic", "-monitor", "none", "-serial", "file:"+serial, "-nic", "none", "-no-reboot")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if s, _ := os.ReadFile(serial); bytes.Contains(s, []byte("metal-agent starting")) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("no agent start marker from %s within 90 s", kernel)
}

func repoRootB(b *testing.B) string {
	dir, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			b.Fatal("go.mod not found")
		}
		dir = parent
	}
}
