package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/lab"
)

// TestSecureBootShimIPv6 runs the Secure Boot chain on the IPv6-only
// network (radvd with the managed flag, metald DHCPv6 full mode only,
// --uefi-boot shim): OVMF enforcing Secure Boot, Microsoft's keys
// enrolled, its PXEv6 gets option 59 tftp://[fd66::1]/shim/shimx64.efi
// with the machine's reserved IPv6 address; shim fetches grubx64.efi over
// TFTP on IPv6 from the URL's directory, GRUB (grubnetx64, configured
// from the firmware's DHCPv6 reply) reads grub/grub.cfg and the
// machine's grub.cfg-<MAC>, then Debian's signed kernel and the agent's
// initrd, all TFTP over IPv6 to the reserved address; the agent does
// DHCPv6 and `inspect --wait` completes with secure_boot true.
func TestSecureBootShimIPv6(t *testing.T) {
	t.Parallel() // one VM
	_, shimDir := secureBootSetup(t)
	const mac, ip6 = "52:54:00:e2:5b:06", "fd66::44"
	r := newIPv6Rig(t, "--boot-efi", "--uefi-boot", "shim", "--shim-dir", shimDir)
	v, err := r.lab.AddVM(context.Background(), lab.VMConfig{Name: "sb6", MAC: mac, DiskBytes: 256 << 20, UEFI: true, SecureBoot: true})
	if err != nil {
		t.Fatal(err)
	}
	r.mustCtl("machine", "add", "sb6", "--mac", mac, "--bmc", v.BMCURL(), "--ip6", ip6)
	start := time.Now()
	out, err := r.ctl(6*time.Minute, "inspect", "sb6", "--wait", "--timeout", "5m")
	t.Logf("metalctl inspect --wait (%v):\n%s", time.Since(start).Round(time.Second), tail(out, 1000))
	if err != nil {
		t.Fatalf("inspect through shim over IPv6: %v\nserial:\n%s", err, tail(v.SerialText(), 4000))
	}
	var m struct {
		State    string `json:"state"`
		Hardware struct {
			SecureBoot *bool `json:"secure_boot"`
		} `json:"hardware"`
	}
	r.ctlJSON(&m, "machine", "show", "sb6")
	if m.State != "ready" || m.Hardware.SecureBoot == nil || !*m.Hardware.SecureBoot {
		t.Fatalf("after inspect: %+v, want ready with secure_boot true", m)
	}

	// Every file of the chain went by TFTP to the reserved IPv6 address,
	// after a DHCPv6 offer naming shim.
	want := map[string]bool{"shim/shimx64.efi": false, "shim/grubx64.efi": false, "grub/grub.cfg": false,
		"grub/grub.cfg-" + mac: false, "agent/vmlinuz": false, "agent/initrd": false}
	offer := false
	for _, e := range sbEventsOf(r, "sb6") {
		boot, _ := e.Data["boot"].(string)
		fam, _ := e.Data["family"].(float64)
		offer = offer || (e.Type == "dhcp.offer" && fam == 6 && boot == "tftp://[fd66::1]/shim/shimx64.efi")
		if e.Type != "tftp.sent" {
			continue
		}
		f, _ := e.Data["file"].(string)
		f = strings.TrimPrefix(f, "/")
		if _, ok := want[f]; ok {
			if ip, _ := e.Data["ip"].(string); ip != ip6 {
				t.Errorf("%s sent to %q, want the reserved %s", f, ip, ip6)
			}
			want[f] = true
		}
	}
	if !offer {
		t.Error("no DHCPv6 offer of tftp://[fd66::1]/shim/shimx64.efi")
	}
	for f, seen := range want {
		if !seen {
			t.Errorf("no tftp.sent event for %s", f)
		}
	}
}
