package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/lab"
	"github.com/metal-iaas/metal/test/testenv"
)

const macV6 = "52:54:00:e2:06:01"

// newIPv6Rig is a rig on an IPv6-only lab network, checked to be one.
func newIPv6Rig(t *testing.T, extra ...string) *rig {
	t.Helper()
	r := newRigLab(t, true, lab.MetaldConfig{Extra: extra})
	if out, err := r.lab.Exec(context.Background(), "ip", "-4", "addr", "show", "dev", "br0").CombinedOutput(); err != nil || strings.Contains(string(out), "inet ") {
		t.Fatalf("the bridge has IPv4: %v\n%s", err, out)
	}
	if r.md.URL != "http://[fd66::1]:8080" {
		t.Fatalf("metald URL %s, want the IPv6 literal", r.md.URL)
	}
	return r
}

// TestIPv6OnlyInspect netboots a UEFI VM on an IPv6-only network: the
// bridge has no IPv4 address, radvd advertises fd66::/64 with the managed
// and other-config flags (no SLAAC), and metald runs DHCPv6 in full mode
// only (--dhcp-mode off --dhcp6-mode full, --advertise-url
// http://[fd66::1]:8080). The machine is given a reserved IPv6 address
// outside the pool (`machine edit --ip6 fd66::42`). OVMF's PXEv6 (its
// IPv4 boot options off) gets option 59 tftp://[fd66::1]/snponly.efi with
// the reserved address and fetches iPXE over TFTP on IPv6; iPXE does
// DHCPv6 itself and gets the boot script URL, fetches /boot.ipxe over
// IPv6 from that address; the agent (metal.url an IPv6 literal) does
// DHCPv6, registers from its lease (the agent API is lease-bound) and
// `inspect --wait` completes. The v6 lease, the reserved address, is
// listed by `metalctl lease list`: three DHCPv6 clients (firmware, iPXE,
// the agent's) were each handed the reservation.
func TestIPv6OnlyInspect(t *testing.T) {
	t.Parallel() // one VM
	need(t)
	if err := lab.CheckEFI(); err != nil {
		testenv.Require(t, false, err.Error())
	}
	ctx := context.Background()
	r := newIPv6Rig(t, "--boot-efi")
	v, err := r.lab.AddVM(ctx, lab.VMConfig{Name: "v6vm", MAC: macV6, DiskBytes: 256 << 20, UEFI: true})
	if err != nil {
		t.Fatal(err)
	}
	r.mustCtl("machine", "add", "v6vm", "--mac", macV6, "--bmc", v.BMCURL())
	if out, err := r.ctl(time.Minute, "machine", "edit", "v6vm", "--ip6", "fe80::42"); err == nil || !strings.Contains(out, "link-local") {
		t.Fatalf("a link-local reservation was not refused naming why: %v\n%s", err, out)
	}
	r.mustCtl("machine", "edit", "v6vm", "--ip6", "FD66:0::42")
	start := time.Now()
	out, err := r.ctl(6*time.Minute, "inspect", "v6vm", "--wait", "--timeout", "5m")
	t.Logf("metalctl inspect --wait (%v):\n%s", time.Since(start).Round(time.Second), tail(out, 1000))
	if err != nil {
		t.Fatalf("inspect over IPv6: %v\nserial:\n%s", err, tail(v.SerialText(), 3000))
	}
	var m machine
	r.ctlJSON(&m, "machine", "show", "v6vm")
	if m.State != "ready" || len(m.Hardware.Disks) == 0 || m.IP6 != "fd66::42" {
		t.Fatalf("after inspect: state %q, %d disks, ip6 %q; want ready with the inventory and ip6 fd66::42", m.State, len(m.Hardware.Disks), m.IP6)
	}

	// The lease: the reserved address, for the VM's MAC.
	var leases []struct {
		MAC   string `json:"mac"`
		IP    string `json:"ip"`
		State string `json:"state"`
	}
	r.ctlJSON(&leases, "lease", "list")
	var leased netip.Addr
	for _, le := range leases {
		a, err := netip.ParseAddr(le.IP)
		if le.MAC == macV6 && err == nil && a.Is6() {
			leased = a
		}
	}
	if leased != netip.MustParseAddr("fd66::42") {
		t.Fatalf("v6 lease for %s in metalctl lease list is %v, want the reserved fd66::42: %+v", macV6, leased, leases)
	}

	// Every step went over IPv6: PXEv6's option 59, snponly.efi over
	// TFTP, iPXE's option 59 (the script URL), the script asked from the
	// leased address.
	var evs []uefiEvent
	r.ctlJSON(&evs, "events", "--machine", "v6vm")
	var pxe6, snp, ipxe6, script bool
	for _, e := range evs {
		boot, _ := e.Data["boot"].(string)
		fam, _ := e.Data["family"].(float64)
		switch {
		case e.Type == "dhcp.offer" && fam == 6 && boot == "tftp://[fd66::1]/snponly.efi":
			pxe6 = true
		case e.Type == "dhcp.offer" && fam == 6 && strings.HasPrefix(boot, "http://[fd66::1]:8080/boot.ipxe?mac="):
			ipxe6 = true
		case e.Type == "tftp.sent" && e.Data["file"] == "snponly.efi":
			snp = true
		case e.Type == "boot.script":
			remote, _ := e.Data["remote"].(string)
			script = script || strings.HasPrefix(remote, "["+leased.String()+"]:")
		}
	}
	if !pxe6 || !snp || !ipxe6 || !script {
		t.Errorf("events: PXEv6 offer %v, snponly.efi over TFTP %v, iPXE offer %v, script from %s %v; want all\n%s",
			pxe6, snp, ipxe6, leased, script, tail(r.mustCtl("events", "--machine", "v6vm"), 4000))
	}
	t.Logf("IPv6-only inspect of v6vm at %s done in %v", leased, time.Since(start).Round(time.Second))
}

// TestIPv6OnlyStockDebian provisions the stock Debian 12 cloud image on
// the IPv6-only network: a BIOS VM (QEMU's iPXE ROM does DHCPv6 itself)
// with a reserved IPv6 address netboots, its agent fetches the image over
// IPv6 and writes it with the NoCloud drive, and on first boot the image's
// own cloud-init configures the NIC from metald's network-config — DHCPv6,
// no DHCPv4 — so the installed OS's dhclient -6 is handed the
// reservation too: runcmd prints the address on the console, and the
// disk read offline has cloud-init's ifupdown stanza `inet6 dhcp` and no
// DHCPv4 one. While the agent writes, a hostile host on the same link
// (its own namespace, fd66::66) tries the machine attacks over IPv6:
// every one is refused and the job is untouched.
func TestIPv6OnlyStockDebian(t *testing.T) {
	t.Parallel() // one VM
	need(t)
	const mac, ip6 = "52:54:00:e2:06:02", "fd66::43"
	ctx := context.Background()
	r := newIPv6Rig(t)
	img := debianImages(t, r)["mbr"]
	r.mustCtl("image", "upload", img.OVA, "--name", "debian-v6")
	v, err := r.lab.AddVM(ctx, lab.VMConfig{Name: "deb6", MAC: mac, DiskBytes: img.SizeBytes + 1<<30, MemMiB: 768})
	if err != nil {
		t.Fatal(err)
	}
	r.mustCtl("machine", "add", "deb6", "--mac", mac, "--bmc", v.BMCURL(), "--ip6", ip6)
	r.mustCtl("machine", "edit", "deb6", "--state", "ready")
	userData := poweroffUserData(t, r.dir, `echo "METAL-V6-OK $(ip -6 -o addr show scope global | tr -s " " | cut -d" " -f4 | tr "\n" " ")" | tee /var/tmp/metal-v6 > /dev/ttyS0`)
	start := time.Now()
	done := make(chan error, 1)
	var out string
	go func() {
		var err error
		out, err = r.ctl(10*time.Minute, "provision", "deb6", "--image", "debian-v6", "--wait", "--timeout", "9m", "--user-data", userData)
		done <- err
	}()
	job := waitJob(t, r, "deb6", func(j jobView) bool { return j.Phase == "writing" && j.AgentAddr != "" }, 6*time.Minute, done)
	if job.AgentAddr != ip6 {
		t.Fatalf("job %d claimed from %s, want the reserved %s", job.ID, job.AgentAddr, ip6)
	}
	evil, err := r.lab.AddHost(ctx, "evil6", "fd66::66")
	if err != nil {
		t.Fatal(err)
	}
	runAttacks(t, evil.HTTPClient(), r.md.URL, machineAttacks(mac, "deb6", ip6, job.ID, img.RawSHA256))
	if after := getJob(t, r, job.ID); after.AgentAddr != ip6 || after.State != "running" {
		t.Errorf("the attacks changed the job: %+v", after)
	}
	select {
	case err = <-done:
	case <-time.After(10 * time.Minute):
		t.Fatal("provision did not finish")
	}
	t.Logf("metalctl provision --wait over IPv6 (%.0f s):\n%s", time.Since(start).Seconds(), tail(out, 800))
	if err != nil {
		t.Fatalf("provision over IPv6: %v\nserial:\n%s", err, tail(v.SerialText(), 3000))
	}
	at, err := v.WaitSerial(ctx, "METAL-V6-OK", 0, 6*time.Minute)
	if err != nil {
		t.Fatalf("the installed OS never ran its runcmd: %v\nserial tail:\n%s", err, tail(v.SerialText(), 4000))
	}
	line := v.SerialText()[at:]
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	if !strings.Contains(line, ip6+"/") {
		t.Errorf("the installed OS's global IPv6 addresses %q do not include the reservation %s", line, ip6)
	}
	if _, err := v.WaitSerial(ctx, "reboot: Power down", at, 3*time.Minute); err != nil {
		t.Fatalf("no clean power-off: %v", err)
	}
	time.Sleep(2 * time.Second) // QEMU exits after the guest's power-off
	js, err := lab.Output(ctx, "sfdisk", "-J", v.Disk)
	if err != nil {
		t.Fatal(err)
	}
	var pt sfdiskTable
	if err := json.Unmarshal([]byte(js), &pt); err != nil {
		t.Fatal(err)
	}
	root := pt.part(fmt.Sprintf("%s%d", v.Disk, img.RootPartition))
	if root == nil {
		t.Fatalf("no root partition in %s", js)
	}
	eni, err := exec.CommandContext(ctx, "debugfs", "-R", "cat /etc/network/interfaces.d/50-cloud-init",
		fmt.Sprintf("%s?offset=%d", v.Disk, root.Start*512)).Output()
	if err != nil {
		t.Fatalf("debugfs: %v", err)
	}
	if !strings.Contains(string(eni), "inet6 dhcp") || strings.Contains(string(eni), "inet dhcp") {
		t.Errorf("cloud-init's network configuration: want inet6 dhcp and no DHCPv4:\n%s", eni)
	}
	t.Logf("stock Debian on IPv6 only: provisioned and configured at %s in %.0f s", ip6, time.Since(start).Seconds())
}
