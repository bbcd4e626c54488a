package netboot

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// vmMu runs VMs one at a time (2 cores, TCG).
var vmMu sync.Mutex

type vmSpec struct {
	name  string
	uefi  bool
	mac   string
	nic   string // device model, default e1000
	rom   *string
	extra []string
}

// startVM boots a diskless QEMU VM (TCG) on a new tap of tb's bridge. It
// is killed in Cleanup.
func (tb *testbed) startVM(spec vmSpec) string {
	t := tb.t
	qemu := requireTool(t, "qemu-system-x86_64", "qemu-system-x86")
	vmMu.Lock()
	t.Cleanup(vmMu.Unlock)
	tap := tb.addTap()
	serial := filepath.Join(tb.dir, spec.name+".serial")
	nic := spec.nic
	if nic == "" {
		nic = "e1000"
	}
	dev := fmt.Sprintf("%s,netdev=n0,mac=%s", nic, spec.mac)
	if spec.rom != nil {
		dev += ",romfile=" + *spec.rom
	}
	args := []string{"ip", "netns", "exec", tb.srv, qemu, "-accel", "tcg", "-cpu", "max", "-m", "256",
		"-display", "none", "-vga", "std", "-monitor", "none", "-serial", "file:" + serial,
		"-netdev", "tap,id=n0,ifname=" + tap + ",script=no,downscript=no"}
	if spec.uefi {
		requireFile(t, "/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf")
		vars := filepath.Join(tb.dir, spec.name+"_VARS.fd")
		copyFile(t, "/usr/share/OVMF/OVMF_VARS_4M.fd", vars)
		args = append(args, "-machine", "q35",
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
			"-drive", "if=pflash,format=raw,unit=1,file="+vars,
			"-device", dev+",bootindex=1")
	} else {
		args = append(args, "-machine", "pc", "-boot", "order=n", "-device", dev)
	}
	args = append(args, spec.extra...)
	tb.spawn(spec.name, args...)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(serial)
			t.Logf("--- %s serial (tail) ---\n%s", spec.name, tail(string(b), 3000))
		}
	})
	return serial
}

func requireFile(t testing.TB, path, pkg string) {
	t.Helper()
	_, err := os.Stat(path)
	require(t, err == nil, fmt.Sprintf("missing %s: apt-get install %s", path, pkg))
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}

// waitBoot waits for the script request of mac and the agent kernel fetch
// the script makes, and returns how long that took.
func waitBoot(t *testing.T, h *helper, mac string, d time.Duration) {
	t.Helper()
	start := time.Now()
	e, err := h.wait(d, func(e Event) bool { return e.Kind == EventBootScript && e.MAC == mac })
	if err != nil {
		t.Fatalf("no /boot.ipxe request for %s: %v; events: %v", mac, err, kinds(h.all()))
	}
	if e.Fields["script"] != "agent.ipxe" {
		t.Errorf("script %v, want agent.ipxe", e.Fields["script"])
	}
	if _, err := h.wait(30*time.Second, func(e Event) bool { return e.Kind == "http.get" && e.Fields["path"] == "/agent/vmlinuz" }); err != nil {
		t.Fatalf("the script did not fetch the agent kernel: %v", err)
	}
	t.Logf("%s booted to the agent kernel fetch in %v", mac, time.Since(start).Round(time.Second))
}

func kinds(es []Event) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%s(%s %v) ", e.Kind, e.MAC, e.Fields["boot"])
	}
	return b.String()
}

func TestVMBIOSFullMode(t *testing.T) {
	tb := newTestbed(t)
	tb.startRA()
	mac := "52:54:00:aa:00:01"
	h := tb.startHelper(helperSpec{Config: fullConfig(), Machines: []helperMachine{{MAC: mac, Name: "bios-1", State: "provisioning"}}})
	tb.startVM(vmSpec{name: "bios", mac: mac})
	waitBoot(t, h, mac, 120*time.Second)
	// iPXE (QEMU's NIC ROM) was sent straight to the script URL.
	if _, err := h.wait(time.Second, func(e Event) bool {
		return e.Kind == EventDHCPAck && e.MAC == mac && strings.Contains(fmt.Sprint(e.Fields["boot"]), "/boot.ipxe?mac="+mac)
	}); err != nil {
		t.Errorf("no ACK with the script URL: %v", err)
	}
}

func TestVMUEFIPXEFullMode(t *testing.T) {
	tb := newTestbed(t)
	tb.startRA()
	mac := "52:54:00:aa:00:02"
	h := tb.startHelper(helperSpec{Config: fullConfig(), Machines: []helperMachine{{MAC: mac, Name: "uefi-1", State: "inspecting"}}})
	empty := ""
	tb.startVM(vmSpec{name: "uefi", uefi: true, mac: mac, nic: "virtio-net-pci", rom: &empty})
	// OVMF's own PXE (arch 7, no iPXE) must be sent snponly.efi over TFTP.
	if _, err := h.wait(180*time.Second, func(e Event) bool {
		return e.Kind == EventTFTPSent && e.MAC == mac && e.Fields["file"] == "snponly.efi"
	}); err != nil {
		t.Fatalf("snponly.efi not sent over TFTP: %v; events: %v", err, kinds(h.all()))
	}
	waitBoot(t, h, mac, 90*time.Second)
}

// TestVMUEFIHTTPBoot boots OVMF with its PXE disabled through fw_cfg
// (opt/org.tianocore/IPv4PXESupport and IPv6PXESupport = n), so the
// firmware's first network boot option is UEFI HTTPv4: it must be sent the
// ipxe.efi URL with option 60 HTTPClient, load it over HTTP, and iPXE then
// fetches the script.
func TestVMUEFIHTTPBoot(t *testing.T) {
	tb := newTestbed(t)
	tb.startRA()
	mac := "52:54:00:aa:00:04"
	h := tb.startHelper(helperSpec{Config: fullConfig(), Machines: []helperMachine{{MAC: mac, Name: "http-1", State: "new"}}})
	empty := ""
	tb.startVM(vmSpec{name: "uefi-http", uefi: true, mac: mac, nic: "virtio-net-pci", rom: &empty, extra: []string{
		"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n",
		"-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n",
	}})
	if _, err := h.wait(180*time.Second, func(e Event) bool {
		return e.Kind == EventDHCPAck && e.MAC == mac && e.Fields["boot"] == "http://"+tbServer+":8080/ipxe/ipxe.efi"
	}); err != nil {
		t.Fatalf("no HTTP Boot answer: %v; events: %v", err, kinds(h.all()))
	}
	waitBoot(t, h, mac, 120*time.Second)
}
