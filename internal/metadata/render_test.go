package metadata

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/test/golden"
)

const key1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHb3Cjx6GhMPzVRDv7aFr2CMzOeHx6n0QSnLvKgBbXI6 ops@bastion"

var (
	m1  = inventory.Machine{Name: "rack1-07", MACs: []string{"52:54:00:AA:00:07", "52:54:00:aa:01:07"}, IP: "10.66.0.7"}
	lan = Network{Static: true, Subnet: netip.MustParsePrefix("10.66.0.0/24"), Gateway: netip.MustParseAddr("10.66.0.1"),
		DNS: []netip.Addr{netip.MustParseAddr("10.66.0.1"), netip.MustParseAddr("9.9.9.9")}, Domain: "lab.example"}
	// m1 with a reserved IPv6 address: it comes by DHCPv6, never static.
	m1v6 = inventory.Machine{Name: m1.Name, MACs: m1.MACs, IP: m1.IP, IP6: "fd66::7"}
	dual = Network{Static: lan.Static, Subnet: lan.Subnet, Gateway: lan.Gateway, DNS: lan.DNS, Domain: lan.Domain, DHCP6: true}
	// An IPv6-only metald: no DHCPv4 at all, DHCPv6 full.
	v6only = Network{DHCP6: true, NoDHCP4: true}
)

func files(d *agentapi.ConfigDrive) string {
	var b strings.Builder
	for _, f := range d.Files {
		b.WriteString("=== " + f.Path + "\n" + string(f.Data) + "\n")
	}
	return b.String()
}

// TestConfigDriveGolden: the drive's files for both formats, with a
// static address (metald's DHCP, a reservation) and with DHCP only.
func TestConfigDriveGolden(t *testing.T) {
	ci := CloudInit{UserData: "#cloud-config\nruncmd:\n  - touch /var/tmp/metal-ok\n", SSHKeys: []string{key1}}
	for _, c := range []struct {
		name string
		m    inventory.Machine
		ci   CloudInit
		n    Network
	}{
		{"nocloud-static", m1, ci, lan},
		{"nocloud-dhcp", m1, CloudInit{Hostname: "web7.lab.example"}, Network{}},
		{"nocloud-outside-subnet", inventory.Machine{Name: "far", MACs: m1.MACs, IP: "192.168.9.9"}, ci, lan},
		{"configdrive-static", m1, CloudInit{UserData: ci.UserData, SSHKeys: ci.SSHKeys, ConfigDrive: agentapi.ConfigDriveOpenStack}, lan},
		{"configdrive-dhcp", m1, CloudInit{ConfigDrive: agentapi.ConfigDriveOpenStack}, Network{}},
		{"nocloud-dual-stack", m1v6, ci, dual},
		{"nocloud-ipv6-only", m1v6, ci, v6only},
		{"configdrive-dual-stack", m1v6, CloudInit{ConfigDrive: agentapi.ConfigDriveOpenStack}, dual},
		{"configdrive-ipv6-only", m1v6, CloudInit{ConfigDrive: agentapi.ConfigDriveOpenStack}, v6only},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := ConfigDrive(c.m, 42, c.ci, c.n)
			if err != nil {
				t.Fatal(err)
			}
			want := map[agentapi.ConfigDriveFormat]string{agentapi.ConfigDriveNoCloud: "CIDATA", agentapi.ConfigDriveOpenStack: "CONFIG-2"}[d.Format]
			if d.Label != want || d.SizeBytes != agentapi.DefaultConfigDriveSize {
				t.Fatalf("label %q size %d", d.Label, d.SizeBytes)
			}
			for _, f := range d.Files {
				if f.Path == "meta-data" || f.Path == "network-config" {
					var v any
					if err := yaml.Unmarshal(f.Data, &v); err != nil {
						t.Errorf("%s is not YAML: %v", f.Path, err)
					}
				}
			}
			golden.Check(t, c.name, files(d))
		})
	}
	if d, err := ConfigDrive(m1, 1, CloudInit{ConfigDrive: agentapi.ConfigDriveNone}, lan); d != nil || err != nil {
		t.Errorf("none: %v %v", d, err)
	}
}

func TestCloudInitValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		ci   CloudInit
		want string
	}{
		{"ok", CloudInit{Hostname: "a.b-c.example", SSHKeys: []string{key1, "ssh-rsa AAAAB3Nza=="}, ConfigDrive: "configdrive"}, ""},
		{"empty", CloudInit{}, ""},
		{"hostname upper", CloudInit{Hostname: "Web"}, "hostname"},
		{"hostname newline", CloudInit{Hostname: "a\nb"}, "hostname"},
		{"key junk", CloudInit{SSHKeys: []string{"hello"}}, "ssh_keys[0]"},
		{"two keys in one", CloudInit{SSHKeys: []string{key1 + "\n" + key1}}, "ssh_keys[0]"},
		{"user-data big", CloudInit{UserData: strings.Repeat("x", MaxUserData+1)}, "user_data"},
		{"drive", CloudInit{ConfigDrive: "iso"}, "config_drive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.ci.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, inventory.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want ErrInvalid naming %s", err, c.want)
			}
		})
	}
}
