package netboot

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestARPLookup(t *testing.T) {
	p := filepath.Join(t.TempDir(), "arp")
	os.WriteFile(p, []byte(`IP address       HW type     Flags       HW address            Mask     Device
10.99.0.7        0x1         0x2         52:54:00:aa:00:05     *        br0
10.99.0.8        0x1         0x0         00:00:00:00:00:00     *        br0
`), 0o644)
	if got := arpLookup(p, netip.MustParseAddr("10.99.0.7")); got.String() != "52:54:00:aa:00:05" {
		t.Errorf("complete entry: %v", got)
	}
	for _, ip := range []string{"10.99.0.8", "10.99.0.9"} {
		if got := arpLookup(p, netip.MustParseAddr(ip)); got != nil {
			t.Errorf("%s: %v, want nil", ip, got)
		}
	}
	if got := arpLookup(filepath.Join(t.TempDir(), "none"), netip.MustParseAddr("10.99.0.7")); got != nil {
		t.Errorf("missing file: %v", got)
	}
}
