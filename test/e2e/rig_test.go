package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/testenv"

	"github.com/metal-iaas/metal/test/lab"
)

// shared is built once per test binary: binaries, kernel, agent boot
// files and the test OS images.
type shared struct {
	root, dir string
	bins      lab.Binaries
	kernel    string
	agentDir  string
	err       error
}

var (
	sharedOnce sync.Once
	sh         shared
)

// need skips, or fails under METAL_REQUIRE_ALL=1, when the e2e tests
// cannot run here.
func need(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: VMs (skipped with -short)")
	}
	err := lab.Check()
	if err == nil {
		return
	}
	testenv.Require(t, false, err.Error())
}

func setup(t testing.TB) *shared {
	t.Helper()
	need(t)
	sharedOnce.Do(func() {
		ctx := context.Background()
		lab.CleanupStale(nsPrefix)
		if sh.root, sh.err = lab.RepoRoot(); sh.err != nil {
			return
		}
		if sh.dir, sh.err = os.MkdirTemp("", "metal-e2e-"); sh.err != nil {
			return
		}
		if sh.kernel, sh.err = lab.Kernel(ctx, sh.root); sh.err != nil {
			return
		}
		if sh.bins, sh.err = lab.Build(ctx, sh.root, filepath.Join(sh.dir, "bin")); sh.err != nil {
			return
		}
		sh.agentDir = filepath.Join(sh.dir, "agent")
		sh.err = lab.AgentBoot(sh.kernel, sh.bins.Agent, sh.agentDir)
	})
	if sh.err != nil {
		t.Fatalf("e2e setup: %v", sh.err)
	}
	return &sh
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sh.dir != "" {
		os.RemoveAll(sh.dir)
	}
	os.Exit(code)
}

// rig is one lab with metald running.
type rig struct {
	t   testing.TB
	sh  *shared
	lab *lab.Lab
	md  *lab.Metald
	dir string
}

// nrig numbers the rigs (tests run in parallel).
var nrig atomic.Int32

// nsPrefix names the tests' namespaces: metal-e2e-<pid>-<n>.
const nsPrefix = "metal-e2e-"

func newRig(t testing.TB, extra ...string) *rig {
	t.Helper()
	return newRigCfg(t, lab.MetaldConfig{Extra: extra})
}

// newRigCfg is newRig with metald's configuration (Bin and AgentDir are
// filled in).
func newRigCfg(t testing.TB, mc lab.MetaldConfig) *rig {
	t.Helper()
	return newRigLab(t, false, mc)
}

// newRigLab is newRigCfg on an IPv6-only lab network when ipv6Only
// (lab.Config.IPv6Only: no IPv4 on the bridge, radvd with the managed
// flag, metald with DHCPv6 full mode only).
func newRigLab(t testing.TB, ipv6Only bool, mc lab.MetaldConfig) *rig {
	t.Helper()
	s := setup(t)
	n := nrig.Add(1)
	dir := t.TempDir()
	ctx := context.Background()
	l, err := lab.New(ctx, lab.Config{Name: fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), n), Dir: dir, IPv6Only: ipv6Only})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, sh: s, lab: l, dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			r.dumpLogs()
		}
		l.Close()
	})
	mc.Bin, mc.AgentDir = s.bins.Metald, s.agentDir
	mc.Extra = append([]string{"--power-poll", "0", "--boot-timeout", "4m", "--progress-timeout", "2m"}, mc.Extra...)
	md, err := l.StartMetald(ctx, mc)
	if err != nil {
		t.Fatal(err)
	}
	r.md = md
	return r
}

func (r *rig) dumpLogs() {
	for _, pat := range []string{"metald.log", "*/serial.log", "*/bmc/chassis.log", "*/bmc/vm.log"} {
		files, _ := filepath.Glob(filepath.Join(r.dir, pat))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			s := string(b)
			if len(s) > 6000 {
				s = "..." + s[len(s)-6000:]
			}
			r.t.Logf("--- %s ---\n%s", f, s)
		}
	}
}

// ctl runs metalctl (bounded by d) and returns its combined output.
func (r *rig) ctl(d time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out bytes.Buffer
	cmd := r.md.Metalctl(ctx, r.sh.bins.Metalctl, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// mustCtl is ctl that fails the test on error.
func (r *rig) mustCtl(args ...string) string {
	r.t.Helper()
	out, err := r.ctl(2*time.Minute, args...)
	if err != nil {
		r.t.Fatalf("metalctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// ctlJSON runs metalctl ... -o json into v.
func (r *rig) ctlJSON(v any, args ...string) {
	r.t.Helper()
	out := r.mustCtl(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		r.t.Fatalf("metalctl %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// addVM starts a BMC+VM and registers it with metald as ready.
func (r *rig) addVM(name, mac, ip string, diskBytes int64) *lab.VM {
	r.t.Helper()
	v := r.enrolVM(name, mac, ip, diskBytes)
	r.mustCtl("machine", "edit", name, "--state", "ready")
	return v
}

// enrolVM starts a BMC+VM and enrols it with metald (state new).
func (r *rig) enrolVM(name, mac, ip string, diskBytes int64) *lab.VM {
	r.t.Helper()
	v, err := r.lab.AddVM(context.Background(), lab.VMConfig{Name: name, MAC: mac, DiskBytes: diskBytes})
	if err != nil {
		r.t.Fatal(err)
	}
	r.mustCtl("machine", "add", name, "--mac", mac, "--bmc", v.BMCURL(), "--ip", ip)
	return v
}

// machine is the part of metalctl machine show -o json the tests read.
type machine struct {
	Name        string `json:"name"`
	State       string `json:"state"`
	StateReason string `json:"state_reason"`
	IP6         string `json:"ip6"`
	Hardware    struct {
		Disks []struct {
			Name      string `json:"name"`
			SizeBytes int64  `json:"size_bytes"`
		} `json:"disks"`
		NICs []struct {
			Name, MAC, Driver string
		} `json:"nics"`
	} `json:"hardware"`
}

type image struct {
	Name        string `json:"name"`
	File        string `json:"file"`
	Format      string `json:"format"`
	Size        int64  `json:"size"`
	VirtualSize int64  `json:"virtual_size"`
	RawSHA256   string `json:"raw_sha256"`
}

var (
	imgOnce sync.Once
	imgs    *lab.Image
	imgErr  error
)

// testImage builds (once) the installed-OS disk; its command line points
// the OS at the lab's metald for the hostname.
func testImage(t testing.TB, r *rig) *lab.Image {
	t.Helper()
	imgOnce.Do(func() {
		imgs, imgErr = lab.BuildImage(context.Background(), lab.ImageConfig{Dir: filepath.Join(r.sh.dir, "img"),
			KernelDir: r.sh.kernel, Init: r.sh.bins.InstalledInit, MetadataURL: r.md.URL})
	})
	if imgErr != nil {
		t.Fatal(imgErr)
	}
	return imgs
}
