package netconf

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestFamilyOf(t *testing.T) {
	for url, want := range map[string]int{
		"http://10.66.0.1:8080": 4, "http://[fd66::1]:8080": 6, "https://[fd00::1]": 6,
		"http://metald.lab:8080": 0, "::bad": 0,
	} {
		if got := FamilyOf(url); got != want {
			t.Errorf("FamilyOf(%q) = %d, want %d", url, got, want)
		}
	}
}

// run6 sets up a namespace with a veth pair (srv0 fd78::1/64, eth7),
// runs dnsmasq on srv0 with the given DHCPv6 range flags (and router
// advertisements), and Configure with Family 6 for eth7 in a child
// process. It returns the child's result, the ip helper and resolv.conf.
func run6(t *testing.T, dhcpRange string) (map[string]string, func(...string) string, string) {
	need(t, os.Geteuid() == 0, "root", "run as root (network namespace)")
	_, err := exec.LookPath("dnsmasq")
	need(t, err == nil, "dnsmasq", "apt-get install -y dnsmasq-base")
	ns := fmt.Sprintf("mtnetconf6-%d", os.Getpid())
	ip := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	_ = exec.Command("ip", "netns", "del", ns).Run()
	ip("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "set", "lo", "up")
	ip("-n", ns, "link", "add", "srv0", "type", "veth", "peer", "name", "eth7")
	ip("-n", ns, "link", "set", "eth7", "address", "02:00:00:00:07:07")
	ip("-n", ns, "addr", "add", "fd78::1/64", "dev", "srv0", "nodad")
	ip("-n", ns, "link", "set", "srv0", "up")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	dm := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--port=0", "--user=root", "--interface=srv0", "--bind-interfaces", "--dhcp-authoritative",
		"--dhcp-range="+dhcpRange, "--enable-ra", "--ra-param=srv0,3", "--dhcp-option=option6:dns-server,[fd78::53]",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"), "--log-facility=-", "--log-dhcp")
	var dlog strings.Builder
	dm.Stdout, dm.Stderr = &dlog, &dlog
	if err := dm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = dm.Wait() })

	resolv := filepath.Join(dir, "resolv.conf")
	child := exec.Command("ip", "netns", "exec", ns, os.Args[0])
	child.Env = append(os.Environ(), "METAL_NETCONF_CHILD=02:00:00:00:07:07", "METAL_NETCONF_RESOLV="+resolv, "METAL_NETCONF_FAMILY=6")
	out, err := child.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s\ndnsmasq: %s", err, out, dlog.String())
	}
	var got map[string]string
	line := strings.SplitN(string(out), "\n", 2)[0]
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dnsmasq: %s", dlog.String())
		}
	})
	return got, ip, resolv
}

// dnsmasq is the real DHCPv6 peer (with router advertisements, managed
// flag): Configure with Family 6 gets an IA_NA address for the NIC,
// puts it on the link and writes resolv.conf from option 23.
func TestConfigureDHCPv6WithDnsmasq(t *testing.T) {
	got, ip, resolv := run6(t, "fd78::100,fd78::150,64,1h")
	p, err := netip.ParsePrefix(got["address"])
	if got["interface"] != "eth7" || err != nil || p.Bits() != 64 || p.Addr().Less(netip.MustParseAddr("fd78::100")) ||
		netip.MustParseAddr("fd78::150").Less(p.Addr()) || got["missing"] != "true" {
		t.Fatalf("lease %v", got)
	}
	if a := ip("-n", "mtnetconf6-"+fmt.Sprint(os.Getpid()), "-6", "addr", "show", "eth7"); !strings.Contains(a, got["address"]) {
		t.Errorf("eth7 addresses:\n%s", a)
	}
	if b, _ := os.ReadFile(resolv); string(b) != "nameserver fd78::53\n" {
		t.Errorf("resolv.conf = %q", b)
	}
}

// With router advertisements for SLAAC and stateless DHCPv6 only (dnsmasq
// ra-stateless: no addresses to hand out), Configure takes the address
// the kernel formed from the prefix and the DNS servers from an
// Information-request.
func TestConfigureSLAACWithDnsmasq(t *testing.T) {
	got, _, resolv := run6(t, "::,constructor:srv0,ra-stateless")
	p, err := netip.ParsePrefix(got["address"])
	if got["interface"] != "eth7" || err != nil || !netip.MustParsePrefix("fd78::/64").Contains(p.Addr()) {
		t.Fatalf("lease %v", got)
	}
	// SLAAC's EUI-64 address of 02:00:00:00:07:07.
	if p.Addr() != netip.MustParseAddr("fd78::ff:fe00:707") {
		t.Errorf("SLAAC address %v, want fd78::ff:fe00:707", p.Addr())
	}
	if b, _ := os.ReadFile(resolv); string(b) != "nameserver fd78::53\n" {
		t.Errorf("resolv.conf = %q", b)
	}
}
