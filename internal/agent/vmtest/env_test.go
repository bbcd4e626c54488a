package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metal-iaas/metal/test/testenv"
)

// need skips (or, with METAL_REQUIRE_ALL=1, fails) loudly when a
// prerequisite is missing.
func need(t *testing.T, ok bool, what, fix string) {
	t.Helper()
	testenv.Require(t, ok, "missing "+what+": "+fix)
}

func have(tool string) bool {
	_, err := exec.LookPath(tool)
	return err == nil
}

// repoRoot finds the module root (the directory holding go.mod).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test")
		}
		dir = parent
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// netns is a network namespace with a bridge (with addr) and one tap
// enslaved to it, for QEMU.
type netns struct {
	name, bridge, tap string
	addr              net.IP
}

func newNetns(t *testing.T, prefix string) *netns {
	t.Helper()
	n := &netns{name: fmt.Sprintf("%s-%d", prefix, os.Getpid()), bridge: "br0", tap: "tap0", addr: net.IPv4(10, 77, 0, 1)}
	_ = exec.Command("ip", "netns", "del", n.name).Run()
	run(t, "ip", "netns", "add", n.name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.name).Run() })
	for _, c := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", n.bridge, "type", "bridge"},
		{"addr", "add", n.addr.String() + "/24", "dev", n.bridge},
		{"link", "set", n.bridge, "up"},
		{"tuntap", "add", n.tap, "mode", "tap"},
		{"link", "set", n.tap, "master", n.bridge},
		{"link", "set", n.tap, "up"},
	} {
		run(t, "ip", append([]string{"-n", n.name}, c...)...)
	}
	return n
}

// listen opens a TCP listener inside the namespace: the socket stays in
// the namespace it was created in.
func (n *netns) listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/var/run/netns", n.name))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatalf("setns %s: %v", n.name, err)
	}
	ln, lerr := net.Listen("tcp", addr)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// This thread is in the wrong namespace: never let it run Go code
		// again (LockOSThread without Unlock makes the runtime kill it).
		runtime.LockOSThread()
		t.Fatalf("setns back: %v", err)
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	return ln
}

// dnsmasq starts a DHCP-only dnsmasq on the bridge inside the namespace.
func (n *netns) dnsmasq(t *testing.T, dir string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log, err := os.Create(filepath.Join(dir, "dnsmasq.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.name, "dnsmasq",
		"--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--user=root",
		"--interface="+n.bridge, "--bind-interfaces", "--no-ping", "--dhcp-authoritative",
		"--dhcp-range=10.77.0.50,10.77.0.99,255.255.255.0,1h",
		"--dhcp-option=option:router,10.77.0.1",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"),
		"--pid-file="+filepath.Join(dir, "dnsmasq.pid"),
		"--log-dhcp", "--log-facility=-")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("dnsmasq log:\n%s", b)
		}
	})
}

// lldpd runs Debian's lldpd on a veth whose peer is a port of the bridge,
// announcing system name sysName and port portID every second; the bridge
// is told to forward LLDP's link-local group address (group_fwd_mask bit
// 14), so the frames reach the VM's tap.
func (n *netns) lldpd(t *testing.T, sysName, portID string) {
	t.Helper()
	for _, c := range [][]string{
		{"link", "set", n.bridge, "type", "bridge", "group_fwd_mask", "16384"},
		{"link", "add", "lldp0", "type", "veth", "peer", "name", "lldp1"},
		{"link", "set", "lldp1", "master", n.bridge},
		{"link", "set", "lldp1", "up"},
		{"link", "set", "lldp0", "up"},
	} {
		run(t, "ip", append([]string{"-n", n.name}, c...)...)
	}
	// lldpd drops privileges; its control socket and config must be
	// reachable for _lldpd, so not in a 0700 t.TempDir().
	dir, err := os.MkdirTemp("/run", "mtlldp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "lldpd.conf")
	cfg := "configure system hostname " + sysName + "\nconfigure lldp tx-interval 1\nconfigure lldp portidsubtype local " + portID + "\n"
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", n.name, "lldpd", "-d", "-I", "lldp0", "-C", "lldp0", "-u", filepath.Join(dir, "ctl.sock"), "-O", conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("lldpd:\n%s", tail(out.String(), 4000))
		}
	})
}

// vm is a running QEMU; exited is closed when it ends.
type vm struct {
	exited chan struct{}
	err    error
	serial string
}

// virtioMachine is the NIC (on the namespace's tap) and disk arguments of
// a virtio VM.
func (n *netns) virtioMachine(mac, disk string) []string {
	return []string{
		"-netdev", "tap,id=n0,ifname=" + n.tap + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac=" + mac,
		"-drive", "file=" + disk + ",if=virtio,format=raw,cache=unsafe",
	}
}

// qemu boots kernel+initrd in the namespace with the given machine
// arguments (NICs, disks).
func (n *netns) qemu(t *testing.T, dir, kernel, initrd, cmdline string, machine ...string) *vm {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	serial := filepath.Join(dir, "serial.log")
	args := append([]string{"netns", "exec", n.name, "qemu-system-x86_64",
		"-accel", "tcg", "-cpu", "max", "-m", strconv.Itoa(vmMemMiB), "-smp", "1",
		"-kernel", kernel, "-initrd", initrd, "-append", cmdline,
		"-nographic", "-monitor", "none", "-serial", "file:" + serial, "-no-reboot",
		"-nic", "none"}, machine...)
	cmd := exec.CommandContext(ctx, "ip", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	v := &vm{exited: make(chan struct{}), serial: serial}
	go func() { v.err = cmd.Wait(); close(v.exited) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-v.exited:
		case <-time.After(10 * time.Second):
		}
		if t.Failed() {
			b, _ := os.ReadFile(serial)
			t.Logf("qemu output: %s\nserial console:\n%s", out.String(), tail(string(b), 12000))
		}
	})
	return v
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
