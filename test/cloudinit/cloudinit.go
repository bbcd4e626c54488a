// Package cloudinit runs Debian's cloud-init as the tests' reference for
// what a stock cloud image makes of the network configuration metald
// writes: `cloud-init devel net-convert` renders it with the renderer a
// distribution uses (ifupdown's ENI on Debian, netplan on Ubuntu,
// sysconfig on Rocky/RHEL, systemd-networkd). The package is unpacked
// from Debian's archive into a cache directory, never installed: an
// installed cloud-init would configure the host itself at its next boot.
package cloudinit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/lab"
	"github.com/metal-iaas/metal/test/testenv"
)

// Python is the interpreter cloud-init runs on: Debian's, whose packages
// (python3-yaml, python3-configobj, python3-jinja2, python3-jsonschema,
// python3-jsonpatch, python3-netifaces) it imports.
const Python = "/usr/bin/python3"

// CloudInit is an unpacked cloud-init.
type CloudInit struct {
	root    string // the package's tree
	Version string
}

// Fetch unpacks the cloud-init package of the machine's Debian archive
// into dir (apt-get download; dpkg-deb -x), or takes the copy already
// there.
func Fetch(ctx context.Context, dir string) (*CloudInit, error) {
	c := &CloudInit{root: filepath.Join(dir, "root")}
	if v, err := os.ReadFile(filepath.Join(dir, "VERSION")); err == nil && len(v) > 0 {
		c.Version = strings.TrimSpace(string(v))
		return c, c.check(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(dir, ".fetch-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	os.Chmod(work, 0o755) // apt's _apt user downloads into it
	dl := exec.CommandContext(ctx, "apt-get", "download", "cloud-init")
	dl.Dir = work
	if out, err := dl.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cloudinit: apt-get download cloud-init: %w\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(work, "cloud-init_*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("cloudinit: apt-get download left %d packages", len(debs))
	}
	tree := filepath.Join(work, "root")
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], tree).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cloudinit: dpkg-deb -x: %w\n%s", err, out)
	}
	ver, err := exec.CommandContext(ctx, "dpkg-deb", "-f", debs[0], "Version").Output()
	if err != nil {
		return nil, fmt.Errorf("cloudinit: package version: %w", err)
	}
	os.RemoveAll(c.root)
	if err := os.Rename(tree, c.root); err != nil {
		return nil, err
	}
	c.Version = strings.TrimSpace(string(ver))
	if err := c.check(ctx); err != nil {
		return nil, err
	}
	return c, os.WriteFile(filepath.Join(dir, "VERSION"), []byte(c.Version+"\n"), 0o644)
}

// check runs cloud-init once, so that a missing Python module is named
// here rather than as a failed conversion.
func (c *CloudInit) check(ctx context.Context) error {
	out, err := c.cmd(ctx, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("cloudinit: %s does not run on %s: %w\n%s", c.Version, Python, err, out)
	}
	return nil
}

func (c *CloudInit) cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, Python, append([]string{"-m", "cloudinit.cmd.main"}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(c.root, "usr/lib/python3/dist-packages"))
	return cmd
}

// Input formats of NetConvert.
const (
	NetworkConfig = "yaml"              // NoCloud's network-config (v1 or v2)
	NetworkData   = "network_data.json" // OpenStack's config drive
)

// NetConvert renders config (kind NetworkConfig or NetworkData) the way
// distro's cloud-init does with renderer (eni, netplan, sysconfig,
// networkd), the machine's NICs named by nics (MAC → kernel name), and
// returns the files written, by path under the target root.
func (c *CloudInit) NetConvert(ctx context.Context, config []byte, kind, distro, renderer string, nics map[string]string) (map[string]string, error) {
	dir, err := os.MkdirTemp("", "netconvert-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, config, 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "out")
	args := []string{"devel", "net-convert", "-p", in, "-k", kind, "-d", out, "-D", distro, "-O", renderer}
	macs := make([]string, 0, len(nics))
	for mac := range nics {
		macs = append(macs, mac)
	}
	sort.Strings(macs)
	for _, mac := range macs {
		args = append(args, "-m", nics[mac]+","+mac)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if b, err := c.cmd(ctx, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cloudinit: net-convert -D %s -O %s: %w\n%s", distro, renderer, err, b)
	}
	files := map[string]string{}
	err = filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		files["/"+rel] = string(b)
		return nil
	})
	if err == nil && len(files) == 0 {
		err = errors.New("cloudinit: net-convert wrote nothing")
	}
	return files, err
}

// ForTest is Fetch into the checkout's .cache/cloud-init, for a test: when
// cloud-init cannot be had (no Debian archive, a Python module missing)
// the test says why, and fails under METAL_REQUIRE_ALL=1.
func ForTest(t testing.TB) *CloudInit {
	t.Helper()
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Fetch(context.Background(), filepath.Join(root, ".cache", "cloud-init"))
	if err != nil {
		testenv.Require(t, false, err.Error()+" (apt-get update; install the python3 modules listed in scripts/apt-packages.txt)")
	}
	return c
}
