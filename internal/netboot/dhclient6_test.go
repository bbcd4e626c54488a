package netboot

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/sys/unix"
)

// full6Config is DHCPv6 full mode alone on the testbed's bridge.
func full6Config() Config {
	return Config{
		Mode: ModeOff, Interface: "br0", AdvertiseURL: "http://[fd99::1]:8080", TFTPAddr: "off", Unknown: UnknownIgnore,
		LeaseTime: 10 * time.Minute,
		DHCP6: Config6{Mode: ModeFull, RangeStart: netip.MustParseAddr("fd99::100"), RangeEnd: netip.MustParseAddr("fd99::1ff"),
			DNS: []netip.Addr{netip.MustParseAddr("fd99::53")}},
	}
}

// waitLinkLocal waits until c0's link-local address is past DAD.
func (tb *testbed) waitLinkLocal() {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out := run(tb.t, "ip", "-n", tb.cli, "-6", "addr", "show", "dev", "c0", "scope", "link")
		if strings.Contains(out, "fe80::") && !strings.Contains(out, "tentative") {
			return
		}
	}
	tb.t.Fatal("c0 has no usable link-local address")
}

// dhclient6 runs ISC dhclient -6 once in the client namespace and
// returns the script's record ("reason address dns" lines) and whether it
// got a lease.
func (tb *testbed) dhclient6(dir string, timeout int) (string, bool) {
	t := tb.t
	bin := requireTool(t, "dhclient", "isc-dhcp-client")
	tb.waitLinkLocal()
	rec := filepath.Join(dir, "record")
	os.Remove(rec)
	script := filepath.Join(dir, "script.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$reason $new_ip6_address $new_dhcp6_name_servers\" >> "+rec+"\n"), 0o755)
	conf := filepath.Join(dir, "dhclient6.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("timeout %d;\nretry 1;\ninitial-interval 1;\nrequest dhcp6.name-servers;\n", timeout)), 0o644)
	var out strings.Builder
	cmd := exec.Command("ip", "netns", "exec", tb.cli, bin, "-6", "-d", "-1", "-v", "-cf", conf, "-sf", script,
		"-pf", filepath.Join(dir, "pid"), "-lf", filepath.Join(dir, "leases"), "c0")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dhclient -6: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	deadline := time.After(time.Duration(timeout+15) * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(rec)
			t.Logf("dhclient -6 exited: %v\n%s", err, tail(out.String(), 2000))
			return string(b), false
		case <-deadline:
			stop()
			b, _ := os.ReadFile(rec)
			t.Logf("dhclient -6: no lease in time\n%s", tail(out.String(), 2000))
			return string(b), false
		case <-tick.C:
			b, _ := os.ReadFile(rec)
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "BOUND6 ") || strings.HasPrefix(line, "REBOOT6 ") {
					stop()
					return string(b), true
				}
			}
		}
	}
}

// TestDHClient6FullMode: ISC dhclient -6 (DUID-LLT of c0's MAC) gets a
// stateful address from the pool and the DNS server from metal's DHCPv6
// server; the lease is recorded in the ack event; a second run with the
// lease file gets the same address back; an unknown MAC gets nothing.
func TestDHClient6FullMode(t *testing.T) {
	tb := newTestbed(t)
	h := tb.startHelper(helperSpec{Config: full6Config(), Machines: []helperMachine{
		{MAC: "02:00:00:00:00:c0", Name: "node-6", State: "ready"},
	}})
	dir := t.TempDir()
	rec, ok := tb.dhclient6(dir, 20)
	if !ok || !strings.Contains(rec, "BOUND6 fd99::100 fd99::53") {
		t.Fatalf("dhclient -6 did not bind fd99::100 with DNS fd99::53; record:\n%s", rec)
	}
	e, err := h.wait(5*time.Second, func(e Event) bool { return e.Kind == EventDHCPAck && e.MAC == "02:00:00:00:00:c0" })
	if err != nil {
		t.Fatal(err)
	}
	if e.Machine != "node-6" || e.Fields["ip"] != "fd99::100" || e.Fields["mac_from"] != "duid" {
		t.Errorf("ack event = %+v", e)
	}
	rec, ok = tb.dhclient6(dir, 20)
	if !ok || !strings.Contains(rec, "fd99::100") {
		t.Fatalf("second run did not keep fd99::100; record:\n%s", rec)
	}
	m := h.metrics()
	if m["metal_dhcp6_replies_sent_total{type=REPLY}"] < 2 || m["metal_dhcp6_replies_sent_total{type=ADVERTISE}"] < 1 {
		t.Errorf("DHCPv6 reply counters did not move: %v", m)
	}

	// The same client unknown to the inventory (unknown=ignore): silence.
	h2 := tb.startHelper(helperSpec{Config: full6Config()})
	if rec, ok := tb.dhclient6(t.TempDir(), 4); ok {
		t.Fatalf("unknown MAC got a DHCPv6 lease; record:\n%s", rec)
	}
	if m := h2.metrics(); m["metal_netboot_decisions_total{outcome=unknown_ignored}"] < 1 {
		t.Errorf("unknown_ignored not counted: %v", m)
	}
}

// TestDHClient6Reservation: ISC dhclient -6 gets the machine's reserved
// IPv6 address (outside the pool) rather than one from the pool; a
// reservation outside the prefix is ignored (the pool's first address)
// with a warning rather than handed out off-link.
func TestDHClient6Reservation(t *testing.T) {
	tb := newTestbed(t)
	mac := "02:00:00:00:00:c0"
	h := tb.startHelper(helperSpec{Config: full6Config(), Machines: []helperMachine{
		{MAC: mac, Name: "node-6", State: "ready", IP6: "fd99::42"},
	}})
	rec, ok := tb.dhclient6(t.TempDir(), 20)
	if !ok || !strings.Contains(rec, "BOUND6 fd99::42 fd99::53") {
		t.Fatalf("dhclient -6 did not bind the reserved fd99::42; record:\n%s", rec)
	}
	e, err := h.wait(5*time.Second, func(e Event) bool { return e.Kind == EventDHCPAck && e.MAC == mac })
	if err != nil {
		t.Fatal(err)
	}
	if e.Machine != "node-6" || e.Fields["ip"] != "fd99::42" {
		t.Errorf("ack event = %+v", e)
	}
	h.metrics() // stopped: the next helper takes the ports

	h2 := tb.startHelper(helperSpec{Config: full6Config(), Machines: []helperMachine{
		{MAC: mac, Name: "node-6", State: "ready", IP6: "fd98::42"},
	}})
	rec, ok = tb.dhclient6(t.TempDir(), 20)
	if !ok || !strings.Contains(rec, "BOUND6 fd99::100 ") {
		t.Fatalf("with a reservation off the prefix, dhclient -6 did not get the pool's fd99::100; record:\n%s", rec)
	}
	if _, err := h2.wait(5*time.Second, func(e Event) bool { return e.Kind == EventDHCPAck && e.Fields["ip"] == "fd99::100" }); err != nil {
		t.Error(err)
	}
}

// TestDHCPv6NetbootOptions: a PXEv6 client as OVMF sends it (DUID-UUID,
// arch 7, vendor class PXEClient, EUI-64 link-local source) and iPXE (user
// class iPXE) get option 59 with the TFTP URL of snponly.efi and the boot
// script URL over IPv6, in full mode with an address and in proxy mode
// without one. The client is nclient6 on c0, a real socket in the client
// namespace.
func TestDHCPv6NetbootOptions(t *testing.T) {
	tb := newTestbed(t)
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 0xc0}
	for _, mode := range []Mode{ModeFull, ModeProxy} {
		cfg := full6Config()
		cfg.DHCP6.Mode = mode
		cfg.TFTPAddr = "[fd99::1]:0" // a v6 TFTP listener must open (the URL names port 69 by scheme)
		h := tb.startHelper(helperSpec{Config: cfg, Machines: []helperMachine{{MAC: mac.String(), Name: "node-6", State: "ready"}}})
		pxe := []dhcpv6.Modifier{dhcpv6.WithClientID(&dhcpv6.DUIDUUID{UUID: [16]byte{1, 2, 3}}), dhcpv6.WithArchType(iana.EFI_X86_64),
			dhcpv6.WithOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte("PXEClient:Arch:00007:UNDI:003016")}}),
			dhcpv6.WithRequestedOptions(dhcpv6.OptionBootfileURL)}
		adv := tb.solicit6(mac, pxe...)
		if got := adv.Options.BootFileURL(); got != "tftp://[fd99::1]/snponly.efi" {
			t.Errorf("%s: PXEv6 option 59 %q; %s", mode, got, adv.Summary())
		}
		if ia := adv.Options.OneIANA(); (mode == ModeFull) != (ia != nil && ia.Options.OneAddress() != nil) {
			t.Errorf("%s: IA_NA address present = %v", mode, mode != ModeFull)
		}
		ipxe := []dhcpv6.Modifier{dhcpv6.WithClientID(&dhcpv6.DUIDUUID{UUID: [16]byte{1, 2, 3}}), dhcpv6.WithArchType(iana.EFI_X86_64),
			dhcpv6.WithUserClass([]byte("iPXE"))}
		adv = tb.solicit6(mac, ipxe...)
		if got := adv.Options.BootFileURL(); got != "http://[fd99::1]:8080/boot.ipxe?mac="+mac.String() {
			t.Errorf("%s: iPXE option 59 %q", mode, got)
		}
		if _, err := h.wait(5*time.Second, func(e Event) bool { return e.Kind == EventDHCPOffer && e.Fields["mac_from"] == "link-local" }); err != nil {
			t.Errorf("%s: no offer event with the MAC from the link-local address: %v", mode, err)
		}
		h.metrics()
	}
}

// solicit6 sends a Solicit from c0 (inside the client namespace) and
// returns the Advertise.
func (tb *testbed) solicit6(mac net.HardwareAddr, mods ...dhcpv6.Modifier) *dhcpv6.Message {
	t := tb.t
	tb.waitLinkLocal()
	var adv *dhcpv6.Message
	var err error
	inNetns(t, tb.cli, func() {
		var c *nclient6.Client
		if c, err = nclient6.New("c0", nclient6.WithTimeout(2*time.Second), nclient6.WithRetry(3)); err != nil {
			return
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		adv, err = c.Solicit(ctx, mods...)
	})
	if err != nil {
		t.Fatalf("solicit from c0: %v", err)
	}
	return adv
}

// inNetns runs fn on an OS thread switched into network namespace ns (the
// thread is discarded afterwards); sockets fn opens stay in ns.
func inNetns(t *testing.T, ns string, fn func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
