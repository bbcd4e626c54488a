package bmcsim_test

import (
	"testing"

	"github.com/metal-iaas/metal/test/testenv"
)

// need skips (or, with METAL_REQUIRE_ALL=1, fails) when a tool is missing.
func need(t testing.TB, tool, debPkg string) {
	t.Helper()
	testenv.Tool(t, tool, debPkg)
}
