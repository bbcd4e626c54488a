package bmcsim_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/bmc"
	"github.com/metal-iaas/metal/test/bmcsim"
)

func newManager(t *testing.T, timeout time.Duration) *bmc.Manager {
	t.Helper()
	m, err := bmc.NewManager(bmc.Config{Timeout: timeout, Backoff: 50 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustParse(t *testing.T, s string) bmc.Endpoint {
	t.Helper()
	ep, err := bmc.ParseURL(s)
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	return ep
}

// TestRedfishThroughBMCLib drives the emulator through pkg/bmc (bmclib's
// gofish provider) over HTTPS with insecure=1 and over plain HTTP.
func TestRedfishThroughBMCLib(t *testing.T) {
	for _, useTLS := range []bool{true, false} {
		name := map[bool]string{true: "https", false: "http"}[useTLS]
		t.Run(name, func(t *testing.T) {
			var hookCalls []string
			srv := bmcsim.NewBMC(bmcsim.Config{User: "admin", Password: "s3cret-pw", Hook: func(on bool, boot bmcsim.Boot) error {
				hookCalls = append(hookCalls, map[bool]string{true: "on:" + boot.Target, false: "off"}[on])
				return nil
			}}).Start(useTLS)
			defer srv.Close()
			ep := mustParse(t, srv.BMCURL())
			m := newManager(t, 10*time.Second)
			ctx := context.Background()

			if err := m.Verify(ctx, ep); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if st, err := m.PowerStatus(ctx, ep); err != nil || st != bmc.PowerOff {
				t.Fatalf("PowerStatus = %v, %v; want off", st, err)
			}
			if err := m.SetBootDevice(ctx, ep, bmc.BootPXE, false, true); err != nil {
				t.Fatalf("SetBootDevice: %v", err)
			}
			if b := srv.Boot(); b != (bmcsim.Boot{Target: "Pxe", Enabled: "Once", Mode: "UEFI"}) {
				t.Fatalf("boot override = %+v", b)
			}
			if err := m.PowerOn(ctx, ep); err != nil {
				t.Fatalf("PowerOn: %v", err)
			}
			if !srv.Power() {
				t.Fatal("system not on after PowerOn")
			}
			if b := srv.Boot(); b.Enabled != "Disabled" {
				t.Fatalf("once override not consumed by power on: %+v", b)
			}
			if st, err := m.PowerStatus(ctx, ep); err != nil || st != bmc.PowerOn {
				t.Fatalf("PowerStatus = %v, %v; want on", st, err)
			}
			for _, step := range []struct {
				name string
				fn   func(context.Context, bmc.Endpoint) error
				want string
			}{
				{"cycle", m.PowerCycle, "ForceRestart"},
				{"reset", m.PowerReset, "PowerCycle"},
				{"soft", m.PowerSoft, "GracefulShutdown"},
			} {
				if err := step.fn(ctx, ep); err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				if r := srv.Resets(); r[len(r)-1] != step.want {
					t.Fatalf("%s sent %v, want last %s", step.name, r, step.want)
				}
			}
			if srv.Power() {
				t.Fatal("still on after soft off")
			}
			// Cycling a machine that is off powers it on.
			if err := m.PowerCycle(ctx, ep); err != nil || !srv.Power() {
				t.Fatalf("cycle when off: %v, power %v", err, srv.Power())
			}
			if err := m.PowerOff(ctx, ep); err != nil {
				t.Fatal(err)
			}
			if r := srv.Resets(); r[len(r)-1] != "ForceOff" {
				t.Fatalf("power off sent %v", r)
			}
			if err := m.SetBootDevice(ctx, ep, bmc.BootDisk, true, false); err != nil {
				t.Fatal(err)
			}
			if b := srv.Boot(); b != (bmcsim.Boot{Target: "Hdd", Enabled: "Continuous", Mode: "Legacy"}) {
				t.Fatalf("boot override = %+v", b)
			}
			if err := m.SetBootDevice(ctx, ep, bmc.BootBIOS, false, true); err != nil || srv.Boot().Target != "BiosSetup" {
				t.Fatalf("bios: %v %+v", err, srv.Boot())
			}
			if err := m.VirtualMediaInsert(ctx, ep, "http://127.0.0.1/x.iso"); err != nil {
				t.Fatalf("insert: %v", err)
			}
			if md := srv.Media(); !md.Inserted || md.Image != "http://127.0.0.1/x.iso" {
				t.Fatalf("media = %+v", md)
			}
			// Inserting again ejects first (bmclib) and succeeds.
			if err := m.VirtualMediaInsert(ctx, ep, "http://127.0.0.1/y.iso"); err != nil || srv.Media().Image != "http://127.0.0.1/y.iso" {
				t.Fatalf("re-insert: %v %+v", err, srv.Media())
			}
			if err := m.VirtualMediaEject(ctx, ep); err != nil {
				t.Fatalf("eject: %v", err)
			}
			if md := srv.Media(); md.Inserted {
				t.Fatalf("media still inserted: %+v", md)
			}
			if useTLS && srv.TLSResumed() < srv.Requests()/2 {
				t.Errorf("only %d of %d requests resumed a TLS session", srv.TLSResumed(), srv.Requests())
			}
			if n := srv.Sessions(); n != 0 {
				t.Errorf("%d redfish sessions left open (logout missing)", n)
			}
			want := []string{"on:Pxe", "off", "on:Pxe", "off", "on:Pxe", "off", "on:Pxe", "off"} // the last on is the cycle from off
			if !slices.Equal(hookCalls, want) {
				t.Errorf("hook calls = %v, want %v", hookCalls, want)
			}
		})
	}
}

func TestRedfishWrongPassword(t *testing.T) {
	srv := bmcsim.NewBMC(bmcsim.Config{User: "admin", Password: "right-password"}).Start(true)
	defer srv.Close()
	ep := mustParse(t, srv.BMCURL())
	ep.Password = "wrong-password"
	m := newManager(t, 5*time.Second)
	start := time.Now()
	err := m.Verify(context.Background(), ep)
	if !errors.Is(err, bmc.ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("auth failure took %v (retried?)", time.Since(start))
	}
	// A verifying TLS client (no insecure=1) must refuse the self-signed cert.
	ep = mustParse(t, srv.BMCURL())
	ep.Insecure = false
	if err := m.Verify(context.Background(), ep); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate accepted: %v", err)
	}
}
