package inventory

import (
	"errors"
	"testing"
)

// TestNormalizeMACNotations: the one server-side MAC parser takes every
// notation the agent, iPXE, DHCP and operators use, and nothing else.
func TestNormalizeMACNotations(t *testing.T) {
	for _, in := range []string{"52:54:00:AA:bb:01", " 52-54-00-aa-bb-01 ", "5254.00aa.bb01", "525400aabb01", "52:54:00-aa.bb01"} {
		if got, err := NormalizeMAC(in); err != nil || got != "52:54:00:aa:bb:01" {
			t.Errorf("NormalizeMAC(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "52:54:00:aa:bb", "52:54:00:aa:bb:01:02", "52:54:00:aa:bb:zz", "00:00:00:00:00:00:00:00"} {
		if got, err := NormalizeMAC(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("NormalizeMAC(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}
