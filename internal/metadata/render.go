package metadata

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// CloudInit is what a provision asks of the installed OS's first boot.
// jobs.Params embeds it, so the job record is where both the config
// drive and the HTTP metadata read it from.
type CloudInit struct {
	UserData string   `json:"user_data,omitempty"`
	SSHKeys  []string `json:"ssh_keys,omitempty"`
	Hostname string   `json:"hostname,omitempty"`
	// ConfigDrive is the drive the agent writes; "" is nocloud.
	ConfigDrive agentapi.ConfigDriveFormat `json:"config_drive,omitempty"`
}

// Limits on what a provision may carry (as cloud providers bound them).
const (
	MaxUserData = 64 << 10
	maxSSHKeys  = 32
	maxSSHKey   = 16 << 10
)

var (
	hostnameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
	sshKeyRE   = regexp.MustCompile(`^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+=*( [^\x00-\x1f]*)?$`)
)

// Validate checks c; the error names the field (ErrInvalid).
func (c CloudInit) Validate() error {
	if len(c.UserData) > MaxUserData {
		return fmt.Errorf("%w: user_data is %d bytes, the limit is %d", inventory.ErrInvalid, len(c.UserData), MaxUserData)
	}
	if c.Hostname != "" && (len(c.Hostname) > 253 || !hostnameRE.MatchString(c.Hostname)) {
		return fmt.Errorf("%w: hostname %q is not a lower-case DNS name", inventory.ErrInvalid, c.Hostname)
	}
	if len(c.SSHKeys) > maxSSHKeys {
		return fmt.Errorf("%w: %d ssh_keys, the limit is %d", inventory.ErrInvalid, len(c.SSHKeys), maxSSHKeys)
	}
	for i, k := range c.SSHKeys {
		if len(k) > maxSSHKey || !sshKeyRE.MatchString(k) {
			return fmt.Errorf("%w: ssh_keys[%d] is not one OpenSSH public key line (%.30q…)", inventory.ErrInvalid, i, k)
		}
	}
	if _, err := agentapi.ParseConfigDriveFormat(string(c.ConfigDrive)); err != nil {
		return fmt.Errorf("%w: config_drive %q: want nocloud, configdrive or none", inventory.ErrInvalid, c.ConfigDrive)
	}
	return nil
}

// Network is what metald knows of the provisioning network: with Static
// (metald's full-mode DHCP), a machine with a reserved address gets it
// as a static configuration; otherwise its NICs use DHCP. DHCP6 and
// NoDHCP4 say which DHCP the network has.
type Network struct {
	Static  bool
	Subnet  netip.Prefix
	Gateway netip.Addr
	DNS     []netip.Addr
	Domain  string

	// DHCP6: DHCPv6 gives addresses on this network (metald's, or the
	// site's beside metald's proxy): the NICs ask for one too, and a
	// machine's reserved IPv6 address comes that way (not statically: a
	// static IPv6 address turns off router advertisements, hence the
	// routes, in cloud-init's renderers).
	DHCP6 bool
	// NoDHCP4: the provisioning network is IPv6-only (metald runs no
	// DHCPv4 and is reached at an IPv6 address): NICs do not wait for a
	// DHCPv4 server that is not there.
	NoDHCP4 bool
}

// seed is one provisioning's cloud-init view of a machine.
type seed struct {
	m          inventory.Machine
	ci         CloudInit
	instanceID string
}

func newSeed(m inventory.Machine, jobID int64, ci CloudInit) seed {
	// A new instance-id per provisioning makes cloud-init run again.
	return seed{m: m, ci: ci, instanceID: fmt.Sprintf("%s-%d", m.Name, jobID)}
}

func (s seed) hostname() string {
	if s.ci.Hostname != "" {
		return s.ci.Hostname
	}
	return s.m.Name
}

func (s seed) userData() string {
	if s.ci.UserData == "" {
		return "#cloud-config\n{}\n"
	}
	return s.ci.UserData
}

// staticAddr is the machine's reserved address as a prefix, when the
// network is metald's and the address lies in its subnet.
func (s seed) staticAddr(n Network) (netip.Prefix, bool) {
	a, err := netip.ParseAddr(s.m.IP)
	if !n.Static || err != nil || !n.Subnet.IsValid() || !n.Subnet.Contains(a) {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, n.Subnet.Bits()), true
}

// metaData is NoCloud's meta-data (YAML).
func (s seed) metaData() string {
	md := struct {
		InstanceID    string   `yaml:"instance-id"`
		LocalHostname string   `yaml:"local-hostname"`
		PublicKeys    []string `yaml:"public-keys,omitempty"`
	}{s.instanceID, s.hostname(), s.ci.SSHKeys}
	b, _ := yaml.Marshal(md)
	return string(b)
}

// networkConfig is cloud-init network-config version 2: every NIC
// matched by MAC; the first (the boot NIC) with the reserved IPv4
// address when there is one, the others on DHCP and optional; DHCPv4 and
// DHCPv6 as the network offers them.
func (s seed) networkConfig(n Network) string {
	type nameservers struct {
		Addresses []string `yaml:"addresses,omitempty"`
		Search    []string `yaml:"search,omitempty"`
	}
	type route struct {
		To  string `yaml:"to"`
		Via string `yaml:"via"`
	}
	type eth struct {
		Match       map[string]string `yaml:"match"`
		DHCP4       bool              `yaml:"dhcp4"`
		DHCP6       bool              `yaml:"dhcp6,omitempty"`
		Optional    bool              `yaml:"optional,omitempty"`
		Addresses   []string          `yaml:"addresses,omitempty"`
		Routes      []route           `yaml:"routes,omitempty"`
		Nameservers *nameservers      `yaml:"nameservers,omitempty"`
	}
	cfg := struct {
		Version   int            `yaml:"version"`
		Ethernets map[string]eth `yaml:"ethernets"`
	}{Version: 2, Ethernets: map[string]eth{}}
	for i, mac := range s.m.MACs {
		e := eth{Match: map[string]string{"macaddress": strings.ToLower(mac)}, DHCP4: !n.NoDHCP4, DHCP6: n.DHCP6, Optional: i > 0}
		if p, ok := s.staticAddr(n); ok && i == 0 {
			e.DHCP4 = false
			e.Addresses = []string{p.String()}
			if n.Gateway.IsValid() {
				e.Routes = []route{{To: "0.0.0.0/0", Via: n.Gateway.String()}}
			}
			if ns := nameserversOf(n); len(ns.Addresses)+len(ns.Search) > 0 {
				e.Nameservers = &nameservers{Addresses: ns.Addresses, Search: ns.Search}
			}
		}
		cfg.Ethernets[fmt.Sprintf("nic%d", i)] = e
	}
	b, _ := yaml.Marshal(cfg)
	return string(b)
}

func nameserversOf(n Network) (out struct{ Addresses, Search []string }) {
	for _, d := range n.DNS {
		out.Addresses = append(out.Addresses, d.String())
	}
	if n.Domain != "" {
		out.Search = []string{n.Domain}
	}
	return out
}

// noCloudFiles are the NoCloud seed's four files.
func (s seed) noCloudFiles(n Network) []agentapi.File {
	return []agentapi.File{
		{Path: "meta-data", Data: []byte(s.metaData())},
		{Path: "user-data", Data: []byte(s.userData())},
		{Path: "vendor-data", Data: []byte{}},
		{Path: "network-config", Data: []byte(s.networkConfig(n))},
	}
}

// openStackFiles are OpenStack's config-drive files under
// openstack/latest/ (cloud-init's ConfigDrive, cloudbase-init).
func (s seed) openStackFiles(n Network) []agentapi.File {
	keys := map[string]string{}
	for i, k := range s.ci.SSHKeys {
		keys[fmt.Sprintf("key%d", i)] = k
	}
	md, _ := json.Marshal(map[string]any{
		"uuid": s.instanceID, "name": s.hostname(), "hostname": s.hostname(),
		"public_keys": keys, "launch_index": 0, "availability_zone": "", "meta": map[string]string{"machine": s.m.Name},
	})
	files := []agentapi.File{
		{Path: "openstack/latest/meta_data.json", Data: md},
		{Path: "openstack/latest/network_data.json", Data: s.networkData(n)},
	}
	if s.ci.UserData != "" {
		files = append(files, agentapi.File{Path: "openstack/latest/user_data", Data: []byte(s.ci.UserData)})
	}
	return files
}

// networkData is OpenStack's network_data.json.
func (s seed) networkData(n Network) []byte {
	// Empty lists, never null: cloud-init iterates them
	// (openstack.convert_net_json fails on "services": null).
	links, networks, services := []map[string]any{}, []map[string]any{}, []map[string]any{}
	for i, mac := range s.m.MACs {
		id := fmt.Sprintf("nic%d", i)
		links = append(links, map[string]any{"id": id, "type": "phy", "ethernet_mac_address": strings.ToLower(mac), "mtu": nil})
		net := map[string]any{"id": fmt.Sprintf("net%d", i), "link": id, "type": "ipv4_dhcp"}
		p, static := s.staticAddr(n)
		if static && i == 0 {
			net["type"] = "ipv4"
			net["ip_address"] = p.Addr().String()
			net["netmask"] = netmask(p.Bits())
			if n.Gateway.IsValid() {
				net["routes"] = []map[string]string{{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": n.Gateway.String()}}
			}
		}
		if !n.NoDHCP4 || (static && i == 0) {
			networks = append(networks, net)
		}
		if n.DHCP6 {
			// DHCPv6 (metald hands out the reservation), router
			// advertisements accepted (cloud-init turns accept_ra on).
			// "ipv6_dhcp" rather than "ipv6_dhcpv6-stateful", which
			// cloud-init's sysconfig renderer (Rocky, RHEL) turns into
			// BOOTPROTO=dhcp: DHCPv4 too (TestStockCloudInitRendersNetwork).
			networks = append(networks, map[string]any{"id": fmt.Sprintf("net%d-v6", i), "link": id, "type": "ipv6_dhcp"})
		}
	}
	for _, d := range n.DNS {
		services = append(services, map[string]any{"type": "dns", "address": d.String()})
	}
	b, _ := json.Marshal(map[string]any{"links": links, "networks": networks, "services": services})
	return b
}

func netmask(bits int) string {
	m := uint32(0xffffffff) << (32 - bits)
	if bits == 0 {
		m = 0
	}
	return fmt.Sprintf("%d.%d.%d.%d", m>>24, m>>16&0xff, m>>8&0xff, m&0xff)
}

// ConfigDrive renders the drive the agent writes for provision job
// jobID of m, or nil for "none".
func ConfigDrive(m inventory.Machine, jobID int64, ci CloudInit, n Network) (*agentapi.ConfigDrive, error) {
	f, err := agentapi.ParseConfigDriveFormat(string(ci.ConfigDrive))
	if err != nil {
		return nil, err
	}
	s := newSeed(m, jobID, ci)
	d := &agentapi.ConfigDrive{Format: f, SizeBytes: agentapi.DefaultConfigDriveSize}
	switch f {
	case agentapi.ConfigDriveNone:
		return nil, nil
	case agentapi.ConfigDriveOpenStack:
		d.Label, d.Files = "CONFIG-2", s.openStackFiles(n)
	default:
		d.Label, d.Files = "CIDATA", s.noCloudFiles(n)
	}
	return d, d.Validate()
}
