package bmcsim_test

import (
	"os"
	"os/exec"
	"testing"
)

// need skips (or, with METAL_REQUIRE_ALL=1, fails) when a tool is missing.
func need(t testing.TB, tool, debPkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err == nil {
		return
	}
	msg := "missing " + tool + ": install the Debian package " + debPkg
	if os.Getenv("METAL_REQUIRE_ALL") == "1" {
		t.Fatalf("%s", msg)
	}
	t.Skipf("SKIP (not silent): %s", msg)
}
