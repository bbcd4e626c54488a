package pxe

import (
	"errors"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/templates"
	"github.com/metal-iaas/metal/test/golden"
)

// TestRenderGrub renders every state's GRUB configuration (the Secure Boot
// chain's grub.cfg-<MAC>) into a golden file: the lifecycle's target
// picks the template exactly as for the iPXE scripts.
func TestRenderGrub(t *testing.T) {
	r, err := NewGrubRenderer(templates.FS())
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	all.WriteString("### grub/grub.cfg\n" + GrubConfigText)
	for _, state := range []string{"discovered", "new", "inspecting", "provisioning", "deprovisioning", "ready", "provisioned", "failed", "maintenance"} {
		var b strings.Builder
		boot, _ := inventory.State(state).Boot()
		if err := r.Render(&b, ScriptData{Target: Target(boot), MAC: "52:54:00:12:34:56", Name: "node-1", State: state,
			URL: "http://10.0.0.1:8080/", AgentURL: "https://10.0.0.1:8443/", Token: "TOKEN"}); err != nil {
			t.Fatalf("%s: %v", state, err)
		}
		all.WriteString("### " + state + "\n" + b.String())
	}
	golden.Check(t, "grub", all.String())

	if err := r.Render(&strings.Builder{}, ScriptData{Target: "exploded"}); !errors.Is(err, ErrUnknownTarget) {
		t.Errorf("unknown target: %v", err)
	}
}

// TestRenderGrubInjection: inventory data cannot add GRUB commands,
// variable expansions or kernel arguments.
func TestRenderGrubInjection(t *testing.T) {
	r, err := NewGrubRenderer(templates.FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []Target{TargetAgent, TargetLocal, TargetMaintenance} {
		var b strings.Builder
		err := r.Render(&b, ScriptData{Target: target, MAC: "52:54:00:12:34:56", Name: "evil'\nlinux (tftp)/x; $prefix",
			State: "ready\ninsmod x", URL: "http://h/' init=/bin/sh '$x", Token: "t ok;en"})
		if err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, bad := range []string{"\nlinux (tftp)", "\ninsmod", "$prefix", "$x", "init=/bin/sh '", "t ok", ";"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s: %q got through:\n%s", target, bad, out)
			}
		}
		// Every single quote the template opens is closed on its line.
		for _, line := range strings.Split(out, "\n") {
			if strings.Count(line, "'")%2 != 0 {
				t.Errorf("%s: unbalanced quotes in %q", target, line)
			}
		}
	}
}

func TestGrubMachineMAC(t *testing.T) {
	for name, want := range map[string]string{
		"grub/grub.cfg-52:54:00:12:34:56":          "52:54:00:12:34:56",
		"grub/grub.cfg-52:54:00:AB:cd:EF":          "52:54:00:ab:cd:ef",
		"grub/grub.cfg":                            "",
		"grub/grub.cfg-":                           "",
		"grub/grub.cfg-52:54:00:12:34":             "",
		"grub/grub.cfg-01-52-54-00-12-34-56-aa-bb": "",
		"x/grub.cfg-52:54:00:12:34:56":             "",
	} {
		mac, ok := GrubMachineMAC(name)
		if got := mac.String(); ok != (want != "") || got != want {
			t.Errorf("GrubMachineMAC(%q) = %q %v, want %q", name, got, ok, want)
		}
	}
}

func TestParseUEFIBoot(t *testing.T) {
	for in, want := range map[string]UEFIBoot{"": UEFIBootIPXE, "ipxe": UEFIBootIPXE, " SHIM ": UEFIBootShim} {
		if got, err := ParseUEFIBoot(in); err != nil || got != want {
			t.Errorf("ParseUEFIBoot(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseUEFIBoot("grub"); err == nil || !strings.Contains(err.Error(), `"grub"`) {
		t.Errorf("ParseUEFIBoot(grub): %v, want an error naming it", err)
	}
}

func FuzzGrubMachineMAC(f *testing.F) {
	for _, s := range []string{"grub/grub.cfg-52:54:00:12:34:56", "grub/grub.cfg-", "grub/grub.cfg-01-52-54-00-12-34-56", "grub/grub.cfg-5254.0012.3456", "grub/grub.cfg-\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		mac, ok := GrubMachineMAC(name)
		if !ok {
			return
		}
		if len(mac) != 6 || !strings.HasPrefix(name, GrubMachinePrefix) {
			t.Fatalf("GrubMachineMAC(%q) = %v", name, mac)
		}
	})
}
