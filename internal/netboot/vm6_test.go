package netboot

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// startRA6 runs radvd on br0 telling hosts to take addresses and options
// from DHCPv6 (managed and other-config flags, no SLAAC).
func (tb *testbed) startRA6() {
	t := tb.t
	radvd := requireTool(t, "radvd", "radvd")
	conf := filepath.Join(tb.dir, "radvd6.conf")
	os.WriteFile(conf, []byte("interface br0 {\n AdvSendAdvert on;\n MinRtrAdvInterval 3;\n MaxRtrAdvInterval 10;\n"+
		" AdvManagedFlag on;\n AdvOtherConfigFlag on;\n prefix fd99::/64 { AdvOnLink on; AdvAutonomous off; };\n};\n"), 0o644)
	tb.spawn("radvd", "ip", "netns", "exec", tb.srv, radvd, "-n", "-C", conf, "-p", filepath.Join(tb.dir, "radvd6.pid"), "-m", "stderr")
}

// TestVMUEFIHTTPv6Boot: OVMF with its PXE options off boots UEFI HTTP
// Boot over IPv6 from metal's DHCPv6 alone (no DHCPv4 on the network, so
// its HTTPv4 option times out first): DHCPv6 with vendor class
// HTTPClient and arch 16 gets option 59 http://[fd99::1]:8080/ipxe/ipxe.efi
// and the HTTPClient vendor class back, loads ipxe.efi over HTTP on IPv6;
// iPXE does DHCPv6 and fetches its script and the agent kernel over IPv6.
func TestVMUEFIHTTPv6Boot(t *testing.T) {
	tb := newTestbed(t)
	tb.startRA6()
	mac := "52:54:00:aa:00:06"
	cfg := full6Config()
	h := tb.startHelper(helperSpec{Config: cfg, HTTPAddr: "[fd99::1]:8080", Machines: []helperMachine{{MAC: mac, Name: "http6-1", State: "new"}}})
	empty := ""
	tb.startVM(vmSpec{name: "uefi-http6", uefi: true, mac: mac, nic: "virtio-net-pci", rom: &empty, extra: []string{
		"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n",
		"-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n",
	}})
	start := time.Now()
	if _, err := h.wait(240*time.Second, func(e Event) bool {
		return e.Kind == EventDHCPAck && e.MAC == mac && e.Fields["boot"] == "http://[fd99::1]:8080/ipxe/ipxe.efi"
	}); err != nil {
		t.Fatalf("no HTTPv6 Boot answer: %v; events: %v", err, kinds(h.all()))
	}
	t.Logf("HTTPv6 boot answer %v after start", time.Since(start).Round(time.Second))
	waitBoot(t, h, mac, 180*time.Second)
}
