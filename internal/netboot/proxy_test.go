package netboot

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startDnsmasq runs dnsmasq as the site's DHCP server on br0: addresses
// only, no PXE options, no ping-before-offer.
func (tb *testbed) startDnsmasq() {
	bin := requireTool(tb.t, "dnsmasq", "dnsmasq-base")
	tb.spawn("dnsmasq", "ip", "netns", "exec", tb.srv, bin, "--no-daemon", "--conf-file=/dev/null", "--port=0",
		"--interface=br0", "--bind-interfaces", "--no-ping", "--log-dhcp",
		"--dhcp-range=10.99.0.200,10.99.0.220,255.255.255.0,10m", "--dhcp-authoritative",
		"--dhcp-leasefile="+filepath.Join(tb.dir, "dnsmasq.leases"), "--pid-file="+filepath.Join(tb.dir, "dnsmasq.pid"))
	time.Sleep(300 * time.Millisecond)
}

func proxyConfig() Config {
	return Config{Mode: ModeProxy, Interface: "br0", AdvertiseURL: "http://" + tbServer + ":8080",
		TFTPAddr: tbServer + ":69", Unknown: UnknownIgnore}
}

func TestVMBIOSProxyBesideDnsmasq(t *testing.T) {
	tb := newTestbed(t)
	tb.startRA()
	tb.startDnsmasq()
	mac := "52:54:00:aa:00:03"
	h := tb.startHelper(helperSpec{Config: proxyConfig(), Machines: []helperMachine{{MAC: mac, Name: "proxy-1", State: "provisioning"}}})
	tb.startVM(vmSpec{name: "bios-proxy", mac: mac})
	waitBoot(t, h, mac, 120*time.Second)
	// The address came from dnsmasq's range.
	e, _ := h.wait(time.Second, func(e Event) bool { return e.Kind == EventBootScript && e.MAC == mac })
	if r, _ := e.Fields["remote"].(string); !strings.HasPrefix(r, "10.99.0.2") {
		t.Errorf("script fetched from %q, want an address from dnsmasq's 10.99.0.200-220", r)
	}
	for _, e := range h.all() {
		if (e.Kind == EventDHCPOffer || e.Kind == EventDHCPAck) && e.Fields["ip"] != "0.0.0.0" {
			t.Errorf("proxy mode handed out an address: %+v", e)
		}
	}
	t.Logf("events: %s", kinds(h.all()))
	if _, err := h.wait(time.Second, func(e Event) bool { return e.Kind == EventDHCPOffer && e.MAC == mac }); err != nil {
		t.Errorf("no proxy offer recorded: %v", err)
	}
}

// TestVMUEFIPXEProxyBesideDnsmasq: OVMF's own PXE (no iPXE ROM) takes its
// address from dnsmasq and snponly.efi from metald's proxy answers.
func TestVMUEFIPXEProxyBesideDnsmasq(t *testing.T) {
	tb := newTestbed(t)
	tb.startRA()
	tb.startDnsmasq()
	mac := "52:54:00:aa:00:05"
	h := tb.startHelper(helperSpec{Config: proxyConfig(), Machines: []helperMachine{{MAC: mac, Name: "proxy-uefi", State: "provisioning"}}})
	empty := ""
	tb.startVM(vmSpec{name: "uefi-proxy", uefi: true, mac: mac, nic: "virtio-net-pci", rom: &empty})
	if _, err := h.wait(180*time.Second, func(e Event) bool {
		return e.Kind == EventTFTPSent && e.Fields["file"] == "snponly.efi" && e.MAC == mac && e.Machine == "proxy-uefi"
	}); err != nil {
		t.Fatalf("snponly.efi not sent (or the event lacks the MAC the ARP table knows): %v; events: %v", err, kinds(h.all()))
	}
	waitBoot(t, h, mac, 90*time.Second)
	t.Logf("events: %s", kinds(h.all()))
	for _, e := range h.all() {
		if (e.Kind == EventDHCPOffer || e.Kind == EventDHCPAck) && e.Fields["ip"] != "0.0.0.0" {
			t.Errorf("proxy mode handed out an address: %+v", e)
		}
	}
}
