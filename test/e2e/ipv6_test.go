package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/lab"
	"github.com/metal-iaas/metal/test/testenv"
)

const macV6 = "52:54:00:e2:06:01"

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
	s := setup(t)
	dir := t.TempDir()
	ctx := context.Background()
	l, err := lab.New(ctx, lab.Config{Name: fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), nrig.Add(1)), Dir: dir, IPv6Only: true})
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
	if out, err := l.Exec(ctx, "ip", "-4", "addr", "show", "dev", "br0").CombinedOutput(); err != nil || strings.Contains(string(out), "inet ") {
		t.Fatalf("the bridge has IPv4: %v\n%s", err, out)
	}
	r.md, err = l.StartMetald(ctx, lab.MetaldConfig{Bin: s.bins.Metald, AgentDir: s.agentDir,
		Extra: []string{"--power-poll", "0", "--boot-timeout", "4m", "--progress-timeout", "2m", "--boot-efi"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.md.URL != "http://[fd66::1]:8080" {
		t.Fatalf("metald URL %s, want the IPv6 literal", r.md.URL)
	}
	v, err := l.AddVM(ctx, lab.VMConfig{Name: "v6vm", MAC: macV6, DiskBytes: 256 << 20, UEFI: true})
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
