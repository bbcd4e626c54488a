package metadata

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/test/cloudinit"
)

// renderer is how one distribution's cloud-init writes the network
// configuration: its -D and -O for net-convert, and the file that holds
// the boot NIC's configuration.
type renderer struct {
	distro, output, file string
}

var (
	debianENI     = renderer{"debian", "eni", "/etc/network/interfaces.d/50-cloud-init"}
	ubuntuNetplan = renderer{"ubuntu", "netplan", "/etc/netplan/50-cloud-init.yaml"}
	rockySysconf  = renderer{"rhel", "sysconfig", "/etc/sysconfig/network-scripts/ifcfg-"}
)

// TestStockCloudInitRendersNetwork hands the network configuration
// metald writes — NoCloud's network-config and OpenStack's
// network_data.json, with a static IPv4 reservation, dual stack and
// IPv6-only — to Debian's real cloud-init, rendered as Debian (ifupdown),
// Ubuntu (netplan) and Rocky/RHEL (sysconfig) images do it, and checks
// what each stock image would configure: the reserved address, gateway and
// name servers; DHCPv6 when metald answers it; no DHCPv4 on an IPv6-only
// network where the renderer can say so.
func TestStockCloudInitRendersNetwork(t *testing.T) {
	ci := cloudinit.ForTest(t)
	t.Logf("cloud-init %s", ci.Version)
	v4 := m1
	ipv6Only := inventory.Machine{Name: m1.Name, MACs: m1.MACs, IP6: "fd66::7"}
	nics := map[string]string{"52:54:00:aa:00:07": "eth0", "52:54:00:aa:01:07": "eth1"}
	type expect struct {
		r           renderer
		want, never []string // regular expressions on the boot NIC's file
	}
	for _, tc := range []struct {
		name   string
		m      inventory.Machine
		n      Network
		format agentapi.ConfigDriveFormat
		expect []expect
	}{
		{"nocloud static IPv4", v4, lan, agentapi.ConfigDriveNoCloud, []expect{
			{debianENI, []string{`inet static`, `address 10\.66\.0\.7/24`, `gw 10\.66\.0\.1`, `dns-nameservers 10\.66\.0\.1 9\.9\.9\.9`}, []string{`inet6`, `inet dhcp`}},
			{ubuntuNetplan, []string{`- 10\.66\.0\.7/24`, `via: 10\.66\.0\.1`, `dhcp4: false`, `- lab\.example`}, []string{`dhcp6: true`}},
			{rockySysconf, []string{`BOOTPROTO=none`, `IPADDR=10\.66\.0\.7`, `NETMASK=255\.255\.255\.0`, `DNS1=10\.66\.0\.1`}, []string{`DHCPV6C`}},
		}},
		{"nocloud dual stack", m1v6, dual, agentapi.ConfigDriveNoCloud, []expect{
			{debianENI, []string{`inet6 dhcp`, `address 10\.66\.0\.7/24`, `gw 10\.66\.0\.1`}, []string{`inet dhcp`}},
			{ubuntuNetplan, []string{`dhcp6: true`, `- 10\.66\.0\.7/24`, `via: 10\.66\.0\.1`}, nil},
			{rockySysconf, []string{`DHCPV6C=yes`, `IPV6INIT=yes`, `IPADDR=10\.66\.0\.7`}, nil},
		}},
		{"nocloud IPv6 only", ipv6Only, v6only, agentapi.ConfigDriveNoCloud, []expect{
			{debianENI, []string{`inet6 dhcp`}, []string{`inet dhcp`, `inet static`}},
			{ubuntuNetplan, []string{`dhcp6: true`, `dhcp4: false`}, []string{`dhcp4: true`}},
			{rockySysconf, []string{`DHCPV6C=yes`, `IPV6INIT=yes`, `BOOTPROTO=none`}, []string{`IPADDR=`, `BOOTPROTO=dhcp`}},
		}},
		{"configdrive static IPv4", v4, lan, agentapi.ConfigDriveOpenStack, []expect{
			{debianENI, []string{`inet static`, `address 10\.66\.0\.7/24`, `gw 10\.66\.0\.1`}, []string{`inet6`}},
			{ubuntuNetplan, []string{`- 10\.66\.0\.7/24`, `via: 10\.66\.0\.1`}, []string{`dhcp6: true`}},
			{rockySysconf, []string{`IPADDR=10\.66\.0\.7`, `GATEWAY=10\.66\.0\.1`}, []string{`DHCPV6C`}},
		}},
		{"configdrive dual stack", m1v6, dual, agentapi.ConfigDriveOpenStack, []expect{
			{debianENI, []string{`inet6 dhcp`, `address 10\.66\.0\.7/24`}, nil},
			{ubuntuNetplan, []string{`dhcp6: true`, `accept-ra: true`, `- 10\.66\.0\.7/24`}, nil},
			{rockySysconf, []string{`DHCPV6C=yes`, `IPADDR=10\.66\.0\.7`, `GATEWAY=10\.66\.0\.1`, `BOOTPROTO=none`}, nil},
		}},
		{"configdrive IPv6 only", ipv6Only, v6only, agentapi.ConfigDriveOpenStack, []expect{
			{debianENI, []string{`inet6 dhcp`, `accept_ra 1`}, []string{`inet dhcp`, `inet static`}},
			{ubuntuNetplan, []string{`dhcp6: true`, `accept-ra: true`}, []string{`dhcp4: true`}},
			{rockySysconf, []string{`DHCPV6C=yes`, `BOOTPROTO=none`}, []string{`IPADDR=`, `BOOTPROTO=dhcp`}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ConfigDrive(tc.m, 7, CloudInit{ConfigDrive: tc.format}, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			kind, path := cloudinit.NetworkConfig, "network-config"
			if tc.format == agentapi.ConfigDriveOpenStack {
				kind, path = cloudinit.NetworkData, "openstack/latest/network_data.json"
			}
			var cfg []byte
			for _, f := range d.Files {
				if f.Path == path {
					cfg = f.Data
				}
			}
			if cfg == nil {
				t.Fatalf("the drive has no %s", path)
			}
			for _, e := range tc.expect {
				files, err := ci.NetConvert(context.Background(), cfg, kind, e.r.distro, e.r.output, nics)
				if err != nil {
					t.Fatalf("%s: %v", e.r.distro, err)
				}
				got := bootNIC(files, e.r)
				for _, re := range e.want {
					if !regexp.MustCompile(`(?m)` + re).MatchString(got) {
						t.Errorf("%s (%s): no %q in what cloud-init wrote from\n%s\n--- it wrote:\n%s", e.r.distro, e.r.output, re, cfg, got)
					}
				}
				for _, re := range e.never {
					if regexp.MustCompile(`(?m)` + re).MatchString(got) {
						t.Errorf("%s (%s): %q in what cloud-init wrote from\n%s\n--- it wrote:\n%s", e.r.distro, e.r.output, re, cfg, got)
					}
				}
			}
		})
	}
}

// bootNIC is what the renderer wrote for the boot NIC, whatever
// cloud-init named it (nic0 after metald's network-config key, eth0 after
// the kernel's name): its ENI stanzas (and the loopback's, where ENI puts
// name servers), its netplan block, or its ifcfg and route files.
func bootNIC(files map[string]string, r renderer) string {
	isBoot := regexp.MustCompile(`\b(nic0|eth0)\b`)
	var b strings.Builder
	switch r.output {
	case "eni":
		for _, para := range strings.Split(files[r.file], "\n\n") {
			if isBoot.MatchString(para) || strings.Contains(para, "iface lo ") {
				b.WriteString(para + "\n\n")
			}
		}
	case "netplan":
		in, indent := false, 0
		for _, line := range strings.Split(files[r.file], "\n") {
			trimmed := strings.TrimLeft(line, " ")
			depth := len(line) - len(trimmed)
			switch {
			case trimmed == "nic0:" || trimmed == "eth0:":
				in, indent = true, depth
			case in && trimmed != "" && depth <= indent:
				in = false
			}
			if in {
				b.WriteString(line + "\n")
			}
		}
	default:
		for p, s := range files {
			if strings.HasPrefix(p, "/etc/sysconfig/network-scripts/") && isBoot.MatchString(p) {
				b.WriteString("## " + p + "\n" + s + "\n")
			}
		}
	}
	return b.String()
}
