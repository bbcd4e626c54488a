package bmcsim_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/bmc"
	"github.com/metal-iaas/metal/test/bmcsim"
)

// TestFaultsOneFanOut puts healthy and broken BMCs of both protocols in one
// Each: every broken one ends in a clear error within the timeout and the
// healthy ones answer as usual.
func TestFaultsOneFanOut(t *testing.T) {
	sim := startIPMISim(t, nil)
	good := bmcsim.NewBMC(bmcsim.Config{User: "admin", Password: "rf-pass", PoweredOn: true}).Start(true)
	defer good.Close()

	closedTCP := closedPort(t, "tcp")
	closedUDP := closedPort(t, "udp")
	hang := bmcsim.HangingTCP(t)

	ipmiWrong := mustParse(t, sim.URL())
	ipmiWrong.Password = "not-the-ipmi-pw"
	rfWrong := mustParse(t, good.BMCURL())
	rfWrong.Password = "not-the-rf-pw"
	targets := []bmc.Target{
		{Name: "ipmi-good", Endpoint: mustParse(t, sim.URL())},
		{Name: "redfish-good", Endpoint: mustParse(t, good.BMCURL())},
		{Name: "ipmi-wrong-password", Endpoint: ipmiWrong},
		{Name: "redfish-wrong-password", Endpoint: rfWrong},
		{Name: "redfish-nothing-listening", Endpoint: mustParse(t, fmt.Sprintf("redfish://u:pw-x1@127.0.0.1:%d?insecure=1", closedTCP))},
		{Name: "ipmi-nothing-listening", Endpoint: mustParse(t, fmt.Sprintf("ipmi://u:pw-x2@127.0.0.1:%d", closedUDP))},
		{Name: "redfish-accepts-never-answers", Endpoint: mustParse(t, fmt.Sprintf("redfish://u:pw-x3@127.0.0.1:%d?insecure=1", hang))},
		{Name: "redfish+http-accepts-never-answers", Endpoint: mustParse(t, fmt.Sprintf("redfish+http://u:pw-x4@127.0.0.1:%d", bmcsim.HangingTCP(t)))},
	}
	const timeout = 3 * time.Second
	m, err := bmc.NewManager(bmc.Config{Timeout: timeout, Backoff: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := m.Each(context.Background(), targets, bmc.OpPowerStatus())
	total := time.Since(start)
	want := []struct {
		state bmc.PowerState
		err   error
	}{
		{bmc.PowerOff, nil},
		{bmc.PowerOn, nil},
		{bmc.PowerUnknown, bmc.ErrAuth}, // ipmitool: no session; the probe finds the BMC alive
		{bmc.PowerUnknown, bmc.ErrAuth},
		{bmc.PowerUnknown, bmc.ErrUnreachable},
		{bmc.PowerUnknown, bmc.ErrTimeout}, // UDP: ipmitool retransmits until killed
		{bmc.PowerUnknown, bmc.ErrTimeout},
		{bmc.PowerUnknown, bmc.ErrTimeout},
	}
	secrets := []string{"not-the-ipmi-pw", "not-the-rf-pw", "pw-x1", "pw-x2", "pw-x3", "pw-x4", "ipmi-secret", "rf-pass"}
	for i, r := range res {
		t.Logf("%-36s %-8s %5.2fs attempts=%d err=%v", r.Target.Name, r.State, r.Elapsed.Seconds(), r.Attempts, r.Err)
		if r.State != want[i].state || (want[i].err == nil) != (r.Err == nil) || (want[i].err != nil && !errors.Is(r.Err, want[i].err)) {
			t.Errorf("%s: state %v err %v; want %v %v", r.Target.Name, r.State, r.Err, want[i].state, want[i].err)
		}
		if r.Elapsed > timeout+time.Second {
			t.Errorf("%s took %v with timeout %v", r.Target.Name, r.Elapsed, timeout)
		}
		if r.Err != nil {
			for _, s := range secrets {
				if strings.Contains(r.Err.Error(), s) {
					t.Errorf("%s: error leaks a password: %v", r.Target.Name, r.Err)
				}
			}
		}
	}
	// The healthy BMCs are not held up by the dead ones.
	for _, r := range res[:2] {
		if r.Elapsed > 2*time.Second {
			t.Errorf("%s took %v next to dead BMCs", r.Target.Name, r.Elapsed)
		}
	}
	if total > timeout+2*time.Second {
		t.Errorf("fan-out took %v", total)
	}
}

func closedPort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "tcp":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	default:
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
}
