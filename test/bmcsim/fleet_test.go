package bmcsim_test

import (
	"context"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/bmc"
	"github.com/metal-iaas/metal/test/bmcsim"
)

// TestFleetFanOut powers on a small fleet in one Each and checks that
// concurrent operations on BMCs sharing one IP address still resume their
// TLS sessions (tickets are kept per host:port).
func TestFleetFanOut(t *testing.T) {
	fleet, err := bmcsim.NewFleet(8, bmcsim.Config{User: "admin", Password: "fleet-pw"}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	var targets []bmc.Target
	for _, u := range fleet.URLs() {
		targets = append(targets, bmc.Target{Name: u, Endpoint: mustParse(t, u)})
	}
	m, err := bmc.NewManager(bmc.Config{Concurrency: 8, Timeout: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range m.Each(context.Background(), targets, bmc.OpPowerStatus()) {
		if r.Err != nil || r.State != bmc.PowerOff {
			t.Fatalf("%s: %v %v", r.Target.Name, r.State, r.Err)
		}
	}
	var req0, res0 int64
	for _, s := range fleet.Servers {
		req0, res0 = req0+s.Requests(), res0+s.TLSResumed()
	}
	for _, r := range m.Each(context.Background(), targets, bmc.OpPowerOn()) {
		if r.Err != nil || r.State != bmc.PowerOn {
			t.Fatalf("%s: %v %v", r.Target.Name, r.State, r.Err)
		}
	}
	if fleet.PoweredOn() != len(targets) {
		t.Fatalf("%d of %d on", fleet.PoweredOn(), len(targets))
	}
	var req1, res1 int64
	for _, s := range fleet.Servers {
		req1, res1 = req1+s.Requests(), res1+s.TLSResumed()
	}
	if req1-req0 != res1-res0 {
		t.Fatalf("second fan-out: %d requests, only %d resumed a TLS session", req1-req0, res1-res0)
	}
}
