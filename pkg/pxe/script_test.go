package pxe

import (
	"errors"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/test/golden"

	"github.com/metal-iaas/metal/templates"
)

func TestRenderScripts(t *testing.T) {
	r, err := NewRenderer(templates.FS())
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, state := range []string{"discovered", "new", "inspecting", "provisioning", "deprovisioning", "ready", "provisioned", "failed", "maintenance"} {
		var b strings.Builder
		boot, _ := inventory.State(state).Boot()
		if err := r.Render(&b, ScriptData{Target: Target(boot), MAC: "52:54:00:12:34:56", Name: "node-1", State: state, URL: "http://10.0.0.1:8080/", Token: "TOKEN"}); err != nil {
			t.Fatalf("%s: %v", state, err)
		}
		if !strings.HasPrefix(b.String(), "#!ipxe\n") {
			t.Errorf("%s: not an iPXE script", state)
		}
		all.WriteString("### " + state + "\n" + b.String())
	}
	golden.Check(t, "scripts", all.String())

	if err := r.Render(&strings.Builder{}, ScriptData{Target: "exploded", State: "exploded"}); !errors.Is(err, ErrUnknownTarget) {
		t.Errorf("unknown target: %v", err)
	}
	// Inventory data cannot inject iPXE commands or settings expansions.
	var b strings.Builder
	r.Render(&b, ScriptData{Target: TargetLocal, MAC: "x", Name: "evil\nshell ${root-path} || boot", State: "ready", URL: "http://h"})
	if strings.Contains(b.String(), "\nshell") || strings.Contains(b.String(), "${root") {
		t.Errorf("injection got through:\n%s", b.String())
	}
}
