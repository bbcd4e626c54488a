package netboot

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func fullConfig() Config {
	return Config{
		Mode: ModeFull, Interface: "br0", AdvertiseURL: "http://" + tbServer + ":8080",
		TFTPAddr: tbServer + ":69", Unknown: UnknownIgnore,
		RangeStart: netip.MustParseAddr("10.99.0.100"), RangeEnd: netip.MustParseAddr("10.99.0.150"),
		LeaseTime: 10 * time.Minute, Router: []netip.Addr{netip.MustParseAddr(tbServer)},
		DNS: []netip.Addr{netip.MustParseAddr(tbServer)}, Domain: "metal.test",
	}
}

// dhclient runs ISC dhclient once in the client namespace and returns the
// script's record ("reason ip hostname" lines) and whether it got a lease.
func (tb *testbed) dhclient(timeout int) (string, bool) {
	return tb.dhclientIn(tb.t.TempDir(), timeout)
}

// dhclientIn runs dhclient -1 in the foreground (-d) with its files in dir
// until its script reports a lease (then it is stopped) or it gives up; a
// lease file left in dir by an earlier run makes it start in INIT-REBOOT.
func (tb *testbed) dhclientIn(dir string, timeout int) (string, bool) {
	t := tb.t
	bin := requireTool(t, "dhclient", "isc-dhcp-client")
	rec := filepath.Join(dir, "record")
	os.Remove(rec)
	script := filepath.Join(dir, "script.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$reason $new_ip_address $new_host_name $new_domain_name $new_routers\" >> "+rec+"\n"), 0o755)
	conf := filepath.Join(dir, "dhclient.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("timeout %d;\nretry 1;\ninitial-interval 1;\nrequest subnet-mask, routers, domain-name-servers, domain-name, host-name;\n", timeout)), 0o644)
	var out strings.Builder
	cmd := exec.Command("ip", "netns", "exec", tb.cli, bin, "-d", "-1", "-v", "-cf", conf, "-sf", script,
		"-pf", filepath.Join(dir, "pid"), "-lf", filepath.Join(dir, "leases"), "c0")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dhclient: %v", err)
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
			t.Logf("dhclient exited: %v\n%s", err, tail(out.String(), 2000))
			return string(b), false
		case <-deadline:
			stop()
			b, _ := os.ReadFile(rec)
			t.Logf("dhclient: no lease in time\n%s", tail(out.String(), 2000))
			return string(b), false
		case <-tick.C:
			b, _ := os.ReadFile(rec)
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "BOUND ") || strings.HasPrefix(line, "REBOOT ") {
					stop()
					return string(b), true
				}
			}
		}
	}
}

func TestDHClientFullModeReservation(t *testing.T) {
	tb := newTestbed(t)
	h := tb.startHelper(helperSpec{Config: fullConfig(), Machines: []helperMachine{
		{MAC: "02:00:00:00:00:c0", Name: "node-a", State: "ready", IP: "10.99.0.50", Hostname: "node-a"},
	}})
	dir := t.TempDir()
	rec, ok := tb.dhclientIn(dir, 20)
	if !ok {
		t.Fatalf("dhclient got no lease; record:\n%s", rec)
	}
	if !strings.Contains(rec, "BOUND 10.99.0.50 node-a metal.test 10.99.0.1") {
		t.Fatalf("dhclient did not bind the reservation with options; record:\n%s", rec)
	}
	// Second start with the lease file: INIT-REBOOT (REQUEST without
	// server id) must be ACKed for the same address.
	rec, ok = tb.dhclientIn(dir, 20)
	if !ok || !strings.Contains(rec, "REBOOT 10.99.0.50 ") {
		t.Fatalf("INIT-REBOOT not ACKed; record:\n%s", rec)
	}
	for _, kind := range []string{EventDHCPOffer, EventDHCPAck} {
		e, err := h.wait(5*time.Second, func(e Event) bool { return e.Kind == kind && e.MAC == "02:00:00:00:00:c0" })
		if err != nil {
			t.Fatalf("no %s event: %v", kind, err)
		}
		if e.Machine != "node-a" || e.Fields["ip"] != "10.99.0.50" {
			t.Errorf("%s event = %+v", kind, e)
		}
	}
	m := h.metrics()
	if m["metal_dhcp_replies_sent_total{type=ACK}"] < 1 || m["metal_dhcp_replies_sent_total{type=OFFER}"] < 1 {
		t.Errorf("reply counters did not move: %v", m)
	}
}

func TestDHClientUnknownIgnoredAndDiscoverPool(t *testing.T) {
	tb := newTestbed(t)
	h := tb.startHelper(helperSpec{Config: fullConfig()}) // no machines: c0 is unknown
	start := time.Now()
	rec, ok := tb.dhclient(4)
	if ok || strings.Contains(rec, "BOUND") {
		t.Fatalf("unknown MAC got a lease with unknown=ignore; record:\n%s", rec)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("dhclient wait was not bounded: %v", time.Since(start))
	}
	for _, e := range h.all() {
		if e.Kind == EventDHCPOffer || e.Kind == EventDHCPAck {
			t.Errorf("event for an ignored MAC: %+v", e)
		}
	}
	if m := h.metrics(); m["metal_netboot_decisions_total{outcome=unknown_ignored}"] < 1 {
		t.Errorf("unknown_ignored not counted: %v", m)
	}

	// Same client, unknown=discover: a non-netboot client gets a pool address.
	cfg := fullConfig()
	cfg.Unknown = UnknownDiscover
	h2 := tb.startHelper(helperSpec{Config: cfg})
	rec, ok = tb.dhclient(20)
	if !ok || !strings.Contains(rec, "BOUND 10.99.0.100 ") {
		t.Fatalf("discover mode: want pool address 10.99.0.100; record:\n%s", rec)
	}
	if _, err := h2.wait(5*time.Second, func(e Event) bool { return e.Kind == EventDHCPAck && e.Fields["ip"] == "10.99.0.100" }); err != nil {
		t.Fatal(err)
	}
}
