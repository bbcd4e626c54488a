package tasks

import (
	"errors"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

func TestSelectDisk(t *testing.T) {
	disks := []agentapi.Disk{
		{Name: "sda", SizeBytes: 500 << 30, Serial: "S-A", WWN: "0x5000c500aaaa"},
		{Name: "sdb", SizeBytes: 240 << 30, Serial: "S-B"},
		{Name: "nvme0n1", SizeBytes: 960 << 30, Serial: "N-1", WWN: "eui.1234"},
		{Name: "sdc", SizeBytes: 16 << 30, Removable: true, Serial: "USB"},
		{Name: "vdb", SizeBytes: 240 << 30},
	}
	cases := []struct {
		name  string
		hints *agentapi.RootDeviceHints
		need  int64
		want  string
		err   string
	}{
		{"smallest that fits", nil, 10 << 30, "sdb", ""}, // sdb and vdb tie: name order
		{"too big for small", nil, 300 << 30, "sda", ""},
		{"by name", &agentapi.RootDeviceHints{Name: "/dev/nvme0n1"}, 1, "nvme0n1", ""},
		{"by serial any case", &agentapi.RootDeviceHints{Serial: "s-a"}, 1, "sda", ""},
		{"by wwn without 0x", &agentapi.RootDeviceHints{WWN: "5000C500AAAA"}, 1, "sda", ""},
		{"min size", &agentapi.RootDeviceHints{MinSizeBytes: 600 << 30}, 1, "nvme0n1", ""},
		{"removable only when named", &agentapi.RootDeviceHints{Serial: "USB"}, 1, "sdc", ""},
		{"named but too small", &agentapi.RootDeviceHints{Name: "sdc"}, 20 << 30, "", "sdc has"},
		{"no match", &agentapi.RootDeviceHints{Serial: "nope"}, 1, "", "5 disks"},
		{"nothing fits", nil, 2 << 40, "", "< image"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := SelectDisk(disks, c.hints, c.need)
			if c.err != "" {
				if !errors.Is(err, ErrNoDisk) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want ErrNoDisk with %q", err, c.err)
				}
				return
			}
			if err != nil || d.Name != c.want {
				t.Fatalf("got %q, %v; want %q", d.Name, err, c.want)
			}
		})
	}
}
