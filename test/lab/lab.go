// Package lab is metal's end-to-end test bed on one machine: a private
// network namespace with a bridge (IPv4 + IPv6 with router advertisements),
// the real metald serving full DHCP on it, ipmi_sim BMCs whose chassis
// control starts QEMU VMs on tap devices in the namespace, metalctl run
// against metald, and the bootable "installed OS" test images. The
// end-to-end tests (test/e2e) and the demo (cmd/metal-demo) use it.
//
// Nothing leaves the namespace: every VM, BMC and metald lives inside it.
// Close (and Cleanup, for leftovers of a killed run) kills every process
// in the namespace and deletes it.
package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Addresses inside the namespace (private to it, so every lab uses them).
const (
	BridgeIP   = "10.66.0.1"
	bridgeCIDR = "10.66.0.1/24"
	bridgeV6   = "fd66::1/64"
	// BridgeIP6 is the bridge's IPv6 address; DHCP6Range the pool metald
	// hands out in an IPv6-only lab.
	BridgeIP6  = "fd66::1"
	DHCP6Range = "fd66::100-fd66::1ff"
	DHCPRange  = "10.66.0.100-10.66.0.199"
	bridge     = "br0"
)

// ErrMissing wraps a prerequisite that is not installed.
var ErrMissing = errors.New("missing prerequisite")

// Config configures a Lab.
type Config struct {
	// Name of the network namespace (also used to clean up leftovers of
	// a previous run with the same name); required.
	Name string
	// Dir is the work directory (logs, data, disks); required.
	Dir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// IPv6Only gives the bridge no IPv4 address and has radvd tell
	// hosts to take addresses and options from DHCPv6 (AdvManagedFlag,
	// AdvOtherConfigFlag; the prefix on-link, not autonomous: no SLAAC
	// address to compete with the DHCPv6 lease). metald then runs
	// DHCPv6 only (StartMetald).
	IPv6Only bool
}

// Lab is a running network namespace with its processes.
type Lab struct {
	cfg     Config
	NS      string
	Dir     string
	mu      sync.Mutex
	procs   []*proc
	closers []func() error
	ntap    int
}

// Tools the lab needs, with the Debian package providing each.
var Tools = map[string]string{
	"ip": "iproute2", "radvd": "radvd", "qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils",
	"ipmi_sim": "openipmi", "ipmitool": "ipmitool", "sfdisk": "fdisk", "mkfs.fat": "dosfstools",
	"mcopy": "mtools", "syslinux": "syslinux", "zstd": "zstd", "tar": "tar", "depmod": "kmod",
	"apt-get": "apt", "go": "golang (Go at /usr/local/go)",
}

// Check reports the first missing prerequisite (root, /dev/net/tun, a
// tool), wrapped in ErrMissing, with how to install it.
func Check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: root (network namespaces, tap devices)", ErrMissing)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("%w: /dev/net/tun (modprobe tun)", ErrMissing)
	}
	for tool, pkg := range Tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s (apt-get install %s)", ErrMissing, tool, pkg)
		}
	}
	for _, f := range []string{"/usr/lib/syslinux/mbr/mbr.bin"} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w: %s (apt-get install syslinux-common)", ErrMissing, f)
		}
	}
	return nil
}

// New cleans up leftovers named cfg.Name, then creates the namespace with
// its bridge and starts radvd on it.
func New(ctx context.Context, cfg Config) (*Lab, error) {
	if cfg.Name == "" || cfg.Dir == "" {
		return nil, errors.New("lab: Name and Dir are required")
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	Cleanup(cfg.Name)
	l := &Lab{cfg: cfg, NS: cfg.Name, Dir: cfg.Dir}
	if err := Run(ctx, "ip", "netns", "add", l.NS); err != nil {
		return nil, err
	}
	for _, a := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"addr", "add", bridgeCIDR, "dev", bridge},
		{"addr", "add", bridgeV6, "dev", bridge, "nodad"},
		{"link", "set", bridge, "up"},
	} {
		if cfg.IPv6Only && a[0] == "addr" && a[2] == bridgeCIDR {
			continue
		}
		if err := Run(ctx, "ip", append([]string{"-n", l.NS}, a...)...); err != nil {
			l.Close()
			return nil, err
		}
	}
	// Router advertisements: iPXE otherwise waits ~13 s for IPv6.
	conf := filepath.Join(l.Dir, "radvd.conf")
	if err := os.WriteFile(conf, []byte(RadvdConf(cfg.IPv6Only)), 0o644); err != nil {
		l.Close()
		return nil, err
	}
	if _, err := l.Start("radvd", "radvd", "-n", "-C", conf, "-p", filepath.Join(l.Dir, "radvd.pid"), "-m", "stderr"); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// RadvdConf is the lab's radvd configuration: SLAAC beside DHCPv4, or,
// IPv6-only, "addresses and options from DHCPv6" (docs/netboot.md shows
// the same for a real network).
func RadvdConf(ipv6Only bool) string {
	if ipv6Only {
		return "interface br0 {\n AdvSendAdvert on;\n MinRtrAdvInterval 3;\n MaxRtrAdvInterval 10;\n AdvManagedFlag on;\n AdvOtherConfigFlag on;\n" +
			" prefix fd66::/64 { AdvOnLink on; AdvAutonomous off; };\n};\n"
	}
	return "interface br0 {\n AdvSendAdvert on;\n MinRtrAdvInterval 3;\n MaxRtrAdvInterval 10;\n prefix fd66::/64 { AdvOnLink on; AdvAutonomous on; };\n};\n"
}

// Logf writes a progress line to the configured log.
func (l *Lab) Logf(format string, args ...any) {
	fmt.Fprintf(l.cfg.Log, "lab: "+format+"\n", args...)
}

// AddTap creates a tap device on the bridge and returns its name.
func (l *Lab) AddTap(ctx context.Context) (string, error) {
	l.mu.Lock()
	l.ntap++
	name := fmt.Sprintf("tap%d", l.ntap)
	l.mu.Unlock()
	if err := Run(ctx, "ip", "-n", l.NS, "tuntap", "add", "dev", name, "mode", "tap"); err != nil {
		return "", err
	}
	return name, Run(ctx, "ip", "-n", l.NS, "link", "set", name, "master", bridge, "up")
}

// Exec returns a command that runs inside the namespace.
func (l *Lab) Exec(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.NS, name}, args...)...)
}

// proc is a long-running process in the namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// Start runs a long-running command in the namespace in its own process
// group, output into Dir/<name>.log; Close kills it. The returned channel
// closes when it exits.
func (l *Lab) Start(name, cmd string, args ...string) (<-chan struct{}, error) {
	logf, err := os.OpenFile(filepath.Join(l.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	c := exec.Command("ip", append([]string{"netns", "exec", l.NS, cmd}, args...)...)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: c, log: logf, done: make(chan struct{})}
	go func() { _ = c.Wait(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p.done, nil
}

// kill stops a process group: SIGTERM, then SIGKILL after grace.
func (p *proc) kill(sig syscall.Signal, grace time.Duration) {
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
	p.log.Close()
}

// Close kills every process in the namespace and deletes it. Safe to call
// twice.
func (l *Lab) Close() error {
	l.mu.Lock()
	procs := l.procs
	l.procs = nil
	closers := l.closers
	l.closers = nil
	l.mu.Unlock()
	for _, c := range closers {
		_ = c()
	}
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].kill(syscall.SIGTERM, 3*time.Second)
	}
	Cleanup(l.NS)
	return nil
}

// Cleanup kills every process still in namespace name (QEMU daemonizes
// and so outlives its parent) and deletes the namespace. Nothing happens
// when it does not exist.
func Cleanup(name string) {
	if _, err := os.Stat(filepath.Join("/var/run/netns", name)); err != nil {
		return
	}
	for round := 0; round < 50; round++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, _ := exec.CommandContext(ctx, "ip", "netns", "pids", name).Output()
		cancel()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		for _, s := range pids {
			if pid, err := strconv.Atoi(s); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, "ip", "netns", "del", name).Run()
}

// CleanupStale cleans up namespaces named prefix + "<pid>-…" whose
// process no longer runs (a killed test run's leftovers).
func CleanupStale(prefix string) {
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == nil {
			continue // still running: not ours to touch
		}
		Cleanup(e.Name())
	}
}

// Run runs a command (60 s at most) and returns an error with its output
// when it fails.
func Run(ctx context.Context, name string, args ...string) error {
	_, err := Output(ctx, name, args...)
	return err
}

// Output runs a command (60 s at most) and returns its combined output.
func Output(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// cmdIn is exec.CommandContext (a helper so callers can set Stdin).
func cmdIn(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}
