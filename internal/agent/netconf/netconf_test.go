package netconf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/testenv"
)

func need(t *testing.T, ok bool, what, fix string) {
	t.Helper()
	testenv.Require(t, ok, "missing "+what+": "+fix)
}

// TestMain runs configureChild instead of the tests when the test binary
// is re-executed inside the namespace (the whole process, so that netlink
// and the DHCP sockets of every goroutine are in it).
func TestMain(m *testing.M) {
	if mac := os.Getenv("METAL_NETCONF_CHILD"); mac != "" {
		configureChild(mac)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func configureChild(mac string) {
	out := map[string]string{}
	family, _ := strconv.Atoi(os.Getenv("METAL_NETCONF_FAMILY"))
	lease, err := Configure(context.Background(), Options{MAC: mac, Timeout: 20 * time.Second, ResolvConf: os.Getenv("METAL_NETCONF_RESOLV"), Family: family})
	if err != nil {
		out["error"] = err.Error()
	} else {
		out["interface"], out["address"], out["router"], out["server"] = lease.Interface, lease.Address.String(), lease.Router.String(), lease.Server.String()
	}
	_, err = Configure(context.Background(), Options{MAC: "02:00:00:00:00:99", Timeout: time.Second})
	out["missing"] = fmt.Sprint(errors.Is(err, ErrNoLease))
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

// dnsmasq is the real DHCP peer: Configure gets a lease for the NIC with
// the given MAC and applies address, default route and resolv.conf.
func TestConfigureWithDnsmasq(t *testing.T) {
	need(t, os.Geteuid() == 0, "root", "run as root (network namespace)")
	_, err := exec.LookPath("dnsmasq")
	need(t, err == nil, "dnsmasq", "apt-get install -y dnsmasq-base")
	ns := fmt.Sprintf("mtnetconf-%d", os.Getpid())
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
	ip("-n", ns, "link", "add", "srv0", "type", "veth", "peer", "name", "eth7")
	ip("-n", ns, "link", "set", "eth7", "address", "02:00:00:00:07:07")
	ip("-n", ns, "addr", "add", "10.78.0.1/24", "dev", "srv0")
	ip("-n", ns, "link", "set", "srv0", "up")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	dm := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--port=0", "--user=root", "--interface=srv0", "--bind-interfaces", "--no-ping", "--dhcp-authoritative",
		"--dhcp-range=10.78.0.100,10.78.0.150,255.255.255.0,1h", "--dhcp-option=option:router,10.78.0.1",
		"--dhcp-option=option:dns-server,10.78.0.53", "--dhcp-option=option:domain-name,lab.test",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"), "--log-facility=-")
	var dlog strings.Builder
	dm.Stdout, dm.Stderr = &dlog, &dlog
	if err := dm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = dm.Wait() })

	resolv := filepath.Join(dir, "resolv.conf")
	child := exec.Command("ip", "netns", "exec", ns, os.Args[0])
	child.Env = append(os.Environ(), "METAL_NETCONF_CHILD=02:00:00:00:07:07", "METAL_NETCONF_RESOLV="+resolv)
	out, err := child.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s\ndnsmasq: %s", err, out, dlog.String())
	}
	var got map[string]string
	line := strings.SplitN(string(out), "\n", 2)[0]
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	if got["interface"] != "eth7" || !strings.HasPrefix(got["address"], "10.78.0.1") || !strings.HasSuffix(got["address"], "/24") ||
		got["router"] != "10.78.0.1" || got["server"] != "10.78.0.1" || got["missing"] != "true" {
		t.Fatalf("lease %v\ndnsmasq: %s", got, dlog.String())
	}
	if a := ip("-n", ns, "-4", "addr", "show", "eth7"); !strings.Contains(a, strings.TrimSuffix(got["address"], "/24")+"/24") {
		t.Errorf("eth7 addresses:\n%s", a)
	}
	if r := ip("-n", ns, "route", "show", "default"); !strings.Contains(r, "default via 10.78.0.1 dev eth7") {
		t.Errorf("default route: %q", r)
	}
	if b, _ := os.ReadFile(resolv); string(b) != "nameserver 10.78.0.53\nsearch lab.test\n" {
		t.Errorf("resolv.conf = %q", b)
	}
}
