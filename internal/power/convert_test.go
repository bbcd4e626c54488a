package power

import (
	"testing"

	"github.com/metal-iaas/metal/pkg/metalapi"
	"github.com/metal-iaas/metal/test/golden"
	"github.com/metal-iaas/metal/test/wiretest"
)

// TestWireUnchanged: power results as /api/v1 shows them are byte for
// byte what metald served before its wire types moved to pkg/metalapi
// (testdata/wire, recorded from this package's own Result and
// VerifyResult).
func TestWireUnchanged(t *testing.T) {
	golden.Check(t, "wire/results", wiretest.JSON(t, toResults(wireResults())))
	golden.Check(t, "wire/verify", wiretest.JSON(t, []metalapi.VerifyResult{{Machine: "rack1-07", OK: true}, {Machine: "m2", Error: "no BMC"}}))
	var sel metalapi.Selector
	wiretest.Fill(&sel)
	var r Result
	wiretest.Fill(&r)
	for _, out := range []any{fromSelector(sel), toResult(r)} {
		if unset := wiretest.Unset(out); len(unset) > 0 {
			t.Errorf("%T: %v unset", out, unset)
		}
	}
}

// TestActionsAreTheAPIs: the actions the service runs are those the API
// lists.
func TestActionsAreTheAPIs(t *testing.T) {
	for _, a := range metalapi.PowerActions {
		if _, err := opFor(a); err != nil {
			t.Errorf("API action %q: %v", a, err)
		}
	}
	if len(Actions) != len(metalapi.PowerActions) {
		t.Errorf("service actions %v, API actions %v", Actions, metalapi.PowerActions)
	}
}
