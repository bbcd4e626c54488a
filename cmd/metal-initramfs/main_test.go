package main

import (
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getenv("METAL_INITRAMFS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func cmd(args ...string) *exec.Cmd {
	c := exec.Command(os.Args[0], args...)
	c.Env = append(os.Environ(), "METAL_INITRAMFS_MAIN=1")
	return c
}

// The command builds from a fetch-kernel.sh style directory and reports
// what it put in; the archive is valid gzip.
func TestCommand(t *testing.T) {
	k := t.TempDir()
	mods := filepath.Join(k, "root/lib/modules/6.1.0-x")
	for p, s := range map[string]string{
		"modules.dep":           "kernel/a.ko:\nkernel/b.ko: kernel/a.ko\n",
		"modules.alias":         "alias pci:v1* b\n",
		"kernel/a.ko":           "A",
		"kernel/b.ko":           "B",
		"../../../../VERSION":   "6.1.0-x\n",
		"../../../../agent.bin": "agent",
	} {
		p = filepath.Join(mods, p)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "initrd")
	b, err := cmd("--agent", filepath.Join(k, "agent.bin"), "--kernel", k, "--modules", "b", "--out", out).CombinedOutput()
	if err != nil || !strings.Contains(string(b), "kernel 6.1.0-x, 2 modules") {
		t.Fatalf("%v: %s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := gzip.NewReader(f); err != nil {
		t.Fatalf("output is not gzip: %v", err)
	}
	b, err = cmd("--agent", "x", "--kernel", t.TempDir(), "--out", out).CombinedOutput()
	if err == nil || !strings.Contains(string(b), "fetch-kernel.sh") {
		t.Errorf("missing kernel dir: %v %s", err, b)
	}
	if b, err = cmd().CombinedOutput(); err == nil || !strings.Contains(string(b), "--agent and --out are required") {
		t.Errorf("no flags: %v %s", err, b)
	}
}
