package tasks

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

const mib = 1 << 20

func TestWipeRanges(t *testing.T) {
	cases := []struct {
		name  string
		size  int64
		parts []Partition
		want  []Range
	}{
		{"bare disk", 100 * mib, nil, []Range{{0, mib}, {99 * mib, mib}}},
		{"tiny disk", mib / 2, nil, []Range{{0, mib / 2}}},
		{"partitions merge with disk ends", 100 * mib, []Partition{{"sda1", mib, 49 * mib}, {"sda2", 50 * mib, 49 * mib}},
			[]Range{{0, 2 * mib}, {49 * mib, 2 * mib}, {98 * mib, 2 * mib}}},
		{"small partition", 100 * mib, []Partition{{"sda1", 10 * mib, mib / 4}}, []Range{{0, mib}, {10 * mib, mib / 4}, {99 * mib, mib}}},
		{"partition past the end is clipped", 10 * mib, []Partition{{"sda1", 9 * mib, 4 * mib}}, []Range{{0, mib}, {9 * mib, mib}}},
	}
	for _, c := range cases {
		if got := WipeRanges(c.size, c.parts); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestWipe(t *testing.T) {
	dir := t.TempDir()
	dev, sys := filepath.Join(dir, "dev"), filepath.Join(dir, "sys")
	size := int64(40 * mib)
	for _, d := range []string{"vda", "vdb"} {
		if err := os.MkdirAll(dev, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dev, d), bytes.Repeat([]byte{0xee}, int(size)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// vda has one partition at 8 MiB of 16 MiB (sectors).
	p := filepath.Join(sys, "block/vda/vda1")
	for name, v := range map[string]string{"partition": "1", "start": "16384", "size": "32768"} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &Runner{DevDir: dev, SysRoot: sys, Disks: func() []agentapi.Disk {
		return []agentapi.Disk{{Name: "vda", SizeBytes: size}, {Name: "vdb", SizeBytes: size}, {Name: "sdz", SizeBytes: size, Removable: true}}
	}}
	var reports []agentapi.Progress
	res := r.RunTask(context.Background(), agentapi.Task{ID: "w", Kind: agentapi.TaskWipe, Token: "t",
		RootDeviceHints: &agentapi.RootDeviceHints{Name: "vda"}}, func(p agentapi.Progress) { reports = append(reports, p) })
	if !res.Success || res.Disk != filepath.Join(dev, "vda") || res.BytesWritten != 4*mib {
		t.Fatalf("result %+v", res)
	}
	got, _ := os.ReadFile(filepath.Join(dev, "vda"))
	zero := make([]byte, mib)
	for m := int64(0); m < 40; m++ {
		wantZero := m == 0 || m == 8 || m == 23 || m == 39
		isZero := bytes.Equal(got[m*mib:(m+1)*mib], zero)
		if isZero != wantZero {
			t.Errorf("MiB %d zero = %v, want %v", m, isZero, wantZero)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dev, "vdb")); b[0] != 0xee {
		t.Error("wipe with a name hint touched another disk")
	}
	if len(reports) != 1 || reports[0].BytesWritten != 4*mib || reports[0].Phase != agentapi.PhaseWiping {
		t.Errorf("reports %+v", reports)
	}
	// Without hints: every non-removable disk.
	res = r.RunTask(context.Background(), agentapi.Task{ID: "w2", Kind: agentapi.TaskWipe, Token: "t"}, func(agentapi.Progress) {})
	if !res.Success || res.Disk != filepath.Join(dev, "vda")+","+filepath.Join(dev, "vdb") {
		t.Fatalf("result %+v", res)
	}
	if b, _ := os.ReadFile(filepath.Join(dev, "vdb")); b[0] != 0 || b[size-1] != 0 || b[size/2] != 0xee {
		t.Error("vdb not wiped at its ends only")
	}
}
