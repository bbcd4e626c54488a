package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/metal-iaas/metal/internal/initramfs"
)

// Binaries are the programs a lab runs, built from this checkout.
type Binaries struct {
	Dir                                    string
	Metald, Metalctl, Agent, InstalledInit string
}

// RepoRoot finds the module root (the directory holding go.mod) above
// the working directory, or above this source file.
func RepoRoot() (string, error) {
	starts := []string{}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && len(b) > 0 &&
				strings.Contains(string(b), "module github.com/metal-iaas/metal\n") {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("lab: the metal checkout (go.mod) was not found")
}

// Build compiles metald, metalctl, the static agent and the installed
// OS's init from the checkout at root into dir (5 minutes at most).
func Build(ctx context.Context, root, dir string) (Binaries, error) {
	b := Binaries{Dir: dir,
		Metald: filepath.Join(dir, "metald"), Metalctl: filepath.Join(dir, "metalctl"),
		Agent: filepath.Join(dir, "metal-agent"), InstalledInit: filepath.Join(dir, "metal-demo-os")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return b, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", dir+"/",
		"./cmd/metald", "./cmd/metalctl", "./cmd/metal-agent", "./cmd/metal-demo-os")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return b, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return b, nil
}

// Kernel fetches (once; cached in root/.cache/kernel) Debian's kernel
// with scripts/fetch-kernel.sh and returns its directory.
func Kernel(ctx context.Context, root string) (string, error) {
	kdir := filepath.Join(root, ".cache/kernel")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts/fetch-kernel.sh"), kdir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("fetch kernel: %w\n%s", err, out)
	}
	return kdir, nil
}

// AgentBoot writes the agent's boot files, vmlinuz (Debian's kernel) and
// initrd (initramfs with the agent as /init), into dir for metald
// --agent-dir.
func AgentBoot(kernelDir, agent, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(kernelDir, "vmlinuz"), filepath.Join(dir, "vmlinuz")); err != nil {
		return err
	}
	return buildInitrd(kernelDir, agent, nil, filepath.Join(dir, "initrd"))
}

func buildInitrd(kernelDir, init string, mods []string, out string) error {
	mdir, err := initramfs.ModulesDir(kernelDir)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := initramfs.Build(f, initramfs.Options{Agent: init, ModulesDir: mdir, Modules: mods}); err != nil {
		f.Close()
		return fmt.Errorf("initramfs %s: %w", out, err)
	}
	return f.Close()
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
