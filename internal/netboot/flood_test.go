package netboot

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

const floodEnv = "METAL_NETBOOT_FLOOD"

// runFlood sends 10,000 random or mutated datagrams to each of the
// comma-separated targets, paced and bounded to 30 s.
func runFlood(targets string) int {
	rng := rand.New(rand.NewPCG(7, 8))
	d, _ := dhcpv4.NewDiscovery(net.HardwareAddr{2, 0, 0, 0, 0, 0xee})
	seeds := [][]byte{d.ToBytes(), []byte("\x00\x01undionly.kpxe\x00octet\x00blksize\x001468\x00")}
	deadline := time.Now().Add(30 * time.Second)
	for _, target := range strings.Split(targets, ",") {
		c, err := net.Dial("udp4", target)
		if err != nil {
			fmt.Fprintln(os.Stderr, "flood:", err)
			return 1
		}
		for i := 0; i < 10000 && time.Now().Before(deadline); i++ {
			var b []byte
			if i%2 == 0 {
				b = make([]byte, 1+rng.IntN(600))
				for j := range b {
					b[j] = byte(rng.UintN(256))
				}
			} else {
				seed := seeds[i/2%2]
				b = append([]byte(nil), seed...)
				for k := 0; k < 1+rng.IntN(6); k++ {
					b[rng.IntN(len(b))] = byte(rng.UintN(256))
				}
				b = b[:1+rng.IntN(len(b))]
			}
			if len(b) > 1 && b[0] == 0 && (b[1] == 1 || b[1] == 2) {
				b[0] = 0xff // never a real TFTP RRQ/WRQ: those would open transfers
			}
			c.Write(b)
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		c.Close()
	}
	return 0
}

// TestFloodThenRealClients floods the DHCP and TFTP ports from the client
// namespace with 10,000 datagrams each, then dhclient and curl (TFTP) must
// still be served and the malformed counters must have moved.
func TestFloodThenRealClients(t *testing.T) {
	tb := newTestbed(t)
	h := tb.startHelper(helperSpec{Config: fullConfig(), Machines: []helperMachine{
		{MAC: "02:00:00:00:00:c0", Name: "node-a", State: "ready", IP: "10.99.0.50"},
	}})
	// The client namespace needs an address for the unicast flood and for
	// curl; dhclient (raw socket, custom script) does not care.
	run(t, "ip", "-n", tb.cli, "addr", "add", "10.99.0.9/24", "dev", "c0")
	cmd := exec.Command("ip", "netns", "exec", tb.cli, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), floodEnv+"="+tbServer+":67,"+tbServer+":69")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("flood: %v\n%s", err, out)
	}
	rec, ok := tb.dhclient(20)
	if !ok || !strings.Contains(rec, "BOUND 10.99.0.50 ") {
		t.Fatalf("dhclient after the flood: %s", rec)
	}
	requireTool(t, "curl", "curl")
	out, err := exec.Command("ip", "netns", "exec", tb.cli, "curl", "-sS", "--max-time", "30", "--tftp-blksize", "1468",
		"-o", "/dev/null", "-w", "%{size_download}", "tftp://"+tbServer+"/undionly.kpxe").CombinedOutput()
	if err != nil || string(out) != "74213" {
		t.Fatalf("curl tftp after the flood: %v %s", err, out)
	}
	if _, err := h.wait(5*time.Second, func(e Event) bool { return e.Kind == EventTFTPSent && e.Fields["file"] == "undionly.kpxe" }); err != nil {
		t.Errorf("no tftp.sent event: %v", err)
	}
	m := h.metrics()
	if m["metal_dhcp_packets_malformed_total"] < 1000 || m["metal_tftp_packets_malformed_total"] < 1000 {
		t.Errorf("malformed counters: dhcp %v, tftp %v; want ≥ 1000 each", m["metal_dhcp_packets_malformed_total"], m["metal_tftp_packets_malformed_total"])
	}
}
