package vmtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/internal/agent/agenttest"
	"github.com/metal-iaas/metal/pkg/agentapi"
)

// TestAgentOnQ35WithNVMeAndSATA boots the agent on a q35 machine with the
// hardware of a typical server instead of virtio: an e1000e NIC, an NVMe
// disk and a SATA disk on the ICH9 AHCI controller (sd_mod must be loaded
// for the SCSI device that only appears once ahci is loaded). The
// inventory must name both disks with their serials and by-path names, and
// LLDP from Debian's lldpd on the bridge must show up as the NIC's
// neighbour, and a provision task whose hints give the NVMe serial must write the NVMe
// disk, not the smaller SATA one that the default policy would pick.
func TestAgentOnQ35WithNVMeAndSATA(t *testing.T) {
	need(t, os.Geteuid() == 0, "root", "run the VM test as root (network namespaces, tap)")
	for _, tool := range []string{"qemu-system-x86_64", "dnsmasq", "ip", "apt-get", "dpkg", "depmod", "lldpd"} {
		need(t, have(tool), tool, "apt-get install -y qemu-system-x86 dnsmasq-base iproute2 kmod lldpd")
	}
	_, err := os.Stat("/dev/net/tun")
	need(t, err == nil, "/dev/net/tun", "load the tun module")
	kdir, initrd := artifacts(t)
	dir := t.TempDir()
	const mac = "52:54:00:6d:61:02"
	nvme, sata := filepath.Join(dir, "nvme.raw"), filepath.Join(dir, "sata.raw")
	for p, size := range map[string]int64{nvme: 96 << 20, sata: 48 << 20} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
	}
	img := bytes.Repeat([]byte("metal-nvme-test!"), (8<<20)/16)
	sum := sha256.Sum256(img)

	ns := newNetns(t, "mtq35")
	ns.dnsmasq(t, dir)
	ns.lldpd(t, "leaf1.test", "swp7")
	srv := agenttest.New("q35")
	mux := http.NewServeMux()
	mux.Handle(agentapi.PathPrefix+"/", srv)
	mux.HandleFunc("/images/img.raw", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "img.raw", time.Time{}, bytes.NewReader(img))
	})
	ln := ns.listen(t, net.JoinHostPort(ns.addr.String(), "0"))
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	base := "http://" + ln.Addr().String()

	v := ns.qemu(t, dir, filepath.Join(kdir, "vmlinux"), initrd, "metal.mac="+mac+" metal.url="+base+" quiet console=ttyS0",
		"-M", "q35",
		"-netdev", "tap,id=n0,ifname="+ns.tap+",script=no,downscript=no",
		"-device", "e1000e,netdev=n0,mac="+mac,
		"-drive", "file="+nvme+",if=none,id=d0,format=raw,cache=unsafe",
		"-device", "nvme,drive=d0,serial=NVME-SERIAL-01",
		"-drive", "file="+sata+",if=none,id=d1,format=raw,cache=unsafe",
		"-device", "ide-hd,drive=d1,bus=ide.0,serial=SATA-SERIAL-02")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waitFor(ctx, t, srv, v, "registration", func() bool { return len(srv.Registrations()) > 0 })
	inv := srv.Registrations()[0].Inventory
	disks := map[string]agentapi.Disk{}
	for _, d := range inv.Disks {
		disks[d.Name] = d
	}
	if d := disks["nvme0n1"]; d.SizeBytes != 96<<20 || d.Serial != "NVME-SERIAL-01" || !strings.HasSuffix(d.ByPath, "-nvme-1") || d.Rotational {
		t.Errorf("nvme0n1 = %+v (all disks %+v)", d, inv.Disks)
	}
	if d := disks["sda"]; d.SizeBytes != 48<<20 || d.Serial != "SATA-SERIAL-02" || d.Model != "QEMU HARDDISK" || !strings.Contains(d.ByPath, "-scsi-") {
		t.Errorf("sda = %+v (all disks %+v)", d, inv.Disks)
	}
	var nic *agentapi.NIC
	for i := range inv.NICs {
		if inv.NICs[i].MAC == mac {
			nic = &inv.NICs[i]
		}
	}
	if nic == nil || nic.Driver != "e1000e" || !nic.Link || nic.SpeedMbps != 1000 {
		t.Errorf("nics %+v: want %s on e1000e at 1000 Mb/s with link", inv.NICs, mac)
	}
	// lldpd's announcements reached the agent through the bridge.
	if len(inv.LLDP) != 1 || inv.LLDP[0].SystemName != "leaf1.test" || inv.LLDP[0].PortID != "swp7" || nic == nil || inv.LLDP[0].Interface != nic.Name {
		t.Errorf("lldp neighbours %+v, want leaf1.test port swp7 on the e1000e NIC", inv.LLDP)
	}
	if t.Failed() {
		return
	}
	srv.Queue(agentapi.Task{ID: "p", Kind: agentapi.TaskProvision, Token: "tok", After: agentapi.AfterPowerOff,
		RootDeviceHints: &agentapi.RootDeviceHints{Serial: "nvme-serial-01"},
		Image:           &agentapi.Image{URL: base + "/images/img.raw", SHA256: hex.EncodeToString(sum[:]), VirtualSize: int64(len(img))}})
	waitFor(ctx, t, srv, v, "provision result", func() bool { return len(srv.Results()) > 0 })
	if res := srv.Results()[0]; !res.Success || res.Disk != "/dev/nvme0n1" {
		t.Fatalf("result %+v", res)
	}
	select {
	case <-v.exited:
	case <-ctx.Done():
		t.Fatal("VM did not power off")
	}
	got, _ := os.ReadFile(nvme)
	if !bytes.Equal(got[:len(img)], img) {
		t.Error("the NVMe disk does not hold the image")
	}
	if s, _ := os.ReadFile(sata); bytes.Contains(s[:1<<20], []byte("metal-nvme")) {
		t.Error("the SATA disk was written")
	}
}
