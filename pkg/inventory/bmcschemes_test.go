package inventory

import (
	"maps"
	"slices"
	"testing"

	"github.com/metal-iaas/metal/pkg/bmc"
)

// TestBMCSchemesArePkgBMCs: the inventory accepts exactly the BMC URL
// schemes pkg/bmc speaks; its copy of the list cannot drift.
func TestBMCSchemesArePkgBMCs(t *testing.T) {
	got := slices.Sorted(maps.Keys(bmcSchemes))
	want := slices.Sorted(slices.Values(bmc.Schemes))
	if !slices.Equal(got, want) {
		t.Fatalf("inventory accepts BMC schemes %v, pkg/bmc speaks %v", got, want)
	}
	for _, s := range want {
		raw := s + "://admin:pw@10.0.0.9"
		if err := ValidateBMCURL(raw); err != nil {
			t.Errorf("inventory refuses %s: %v", s, err)
		}
		if _, err := bmc.ParseURL(raw); err != nil {
			t.Errorf("pkg/bmc refuses %s: %v", s, err)
		}
	}
}
