package modules

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", true},
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00008086d00001000sv00001AF4sd00000001bc02sc00i00", false},
		{"virtio:d00000001v*", "virtio:d00000001v00001AF4", true},
		{"virtio:d00000001v*", "virtio:d00000002v00001AF4", false},
		{"scsi:t-0x00*", "scsi:t-0x00", true},
		{"scsi:t-0x0[0-4]*", "scsi:t-0x03", true},
		{"scsi:t-0x0[!0-4]*", "scsi:t-0x03", false},
		{"scsi:t-0x0[^0-4]*", "scsi:t-0x05", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*", "", true},
		{"", "x", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"a/b*", "a/bc", true},
		{"[", "[", true}, // unterminated set is a literal
		{"x[]]y", "x]y", true},
	}
	for _, c := range cases {
		if got := Glob(c.p, c.s); got != c.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}

const aliasText = `# Aliases extracted from modules themselves.
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias virtio:d00000002v* virtio_blk
alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
alias scsi:t-0x00* sd_mod
alias scsi:t-0x00* sd-mod
alias acpi*:PNP0501:* 8250
`

const depText = `kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/ethernet/intel/e1000/e1000.ko:
kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_common.ko:
`

func mustIndex(t *testing.T) (*AliasIndex, Deps) {
	t.Helper()
	ix, err := ParseAliases(strings.NewReader(aliasText))
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseDeps(strings.NewReader(depText))
	if err != nil {
		t.Fatal(err)
	}
	return ix, d
}

func TestAliasMatch(t *testing.T) {
	ix, _ := mustIndex(t)
	cases := map[string][]string{
		"pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00": {"virtio_pci"},
		"virtio:d00000001v00001AF4":                             {"virtio_net"},
		"pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00": {"e1000"},
		"scsi:t-0x00":        {"sd_mod"}, // sd-mod and sd_mod are one module
		"acpi:PNP0501:":      {"8250"},
		"pci:v0000FFFFd0000": nil,
	}
	for in, want := range cases {
		if got := ix.Match(in); !reflect.DeepEqual(got, want) {
			t.Errorf("Match(%q) = %v, want %v", in, got, want)
		}
	}
	if ix.Len() != 7 {
		t.Errorf("Len = %d, want 7", ix.Len())
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := ParseAliases(strings.NewReader("alias onlypattern\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("short alias line: err = %v", err)
	}
	if _, err := ParseDeps(strings.NewReader("no colon here\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("dep line without colon: err = %v", err)
	}
}

func TestDepsOrder(t *testing.T) {
	_, d := mustIndex(t)
	got, err := d.Order("virtio_net", "virtio_pci", "virtio-blk")
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, n := range got {
		if _, dup := pos[n]; dup {
			t.Fatalf("%s twice in %v", n, got)
		}
		pos[n] = i
	}
	for n := range pos {
		for _, dep := range d[n].Deps {
			if pos[dep] > pos[n] {
				t.Errorf("%s before its dependency %s in %v", n, dep, got)
			}
		}
	}
	want := 9 // virtio, ring, failover, net_failover, virtio_net, 2 pci devs, virtio_pci, virtio_blk
	if len(got) != want {
		t.Errorf("order has %d modules, want %d: %v", len(got), want, got)
	}
	if _, err := d.Order("nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown module: err = %v", err)
	}
	cyc := Deps{"a": {Path: "a.ko", Deps: []string{"b"}}, "b": {Path: "b.ko", Deps: []string{"a"}}}
	if _, err := cyc.Order("a"); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: err = %v", err)
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/scsi/sd_mod.ko": "sd_mod",
		"sd-mod":                        "sd_mod",
		"x/snd-hda.ko.xz":               "snd_hda",
		"a.ko.zst":                      "a",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeKernel is an InsertFunc that refuses a module with ErrUnresolved
// until its dependencies are loaded, like finit_module's ENOENT; when a
// module loads it may make new devices appear in the fake sysfs.
type fakeKernel struct {
	t       *testing.T
	deps    Deps
	loaded  map[string]bool
	order   []string
	onLoad  map[string]func()
	refused int
}

func (k *fakeKernel) insert(path string) error {
	n := Name(path)
	if k.loaded[n] {
		return nil
	}
	for _, d := range k.deps[n].Deps {
		if !k.loaded[d] {
			k.refused++
			return ErrUnresolved
		}
	}
	k.loaded[n] = true
	k.order = append(k.order, n)
	if f := k.onLoad[n]; f != nil {
		f()
	}
	return nil
}

func TestLoadAllRetriesInPasses(t *testing.T) {
	_, d := mustIndex(t)
	k := &fakeKernel{t: t, deps: d, loaded: map[string]bool{}}
	l := &Loader{Insert: k.insert, deps: d, loaded: map[string]bool{}, failed: map[string]error{}}
	l.Log = nil
	if err := l.openDefaults(); err != nil {
		t.Fatal(err)
	}
	// Deliberately wrong order: dependents first.
	got := l.LoadAll([]string{"virtio_net", "net_failover", "virtio_ring", "failover", "virtio"})
	if len(got) != 5 || !k.loaded["virtio_net"] {
		t.Fatalf("loaded %v, kernel has %v", got, k.order)
	}
	if k.refused == 0 {
		t.Error("expected some refusals that passes resolved")
	}
	// A module whose dependency never loads fails after a pass without
	// progress instead of looping.
	l2 := &Loader{Insert: func(string) error { return ErrUnresolved }, deps: d, loaded: map[string]bool{}, failed: map[string]error{}}
	_ = l2.openDefaults()
	if got := l2.LoadAll([]string{"virtio"}); len(got) != 0 || l2.failed["virtio"] == nil {
		t.Errorf("loaded %v, failed %v", got, l2.failed)
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRunFollowsNewDevices(t *testing.T) {
	dir := t.TempDir()
	mods := filepath.Join(dir, "lib/modules/6.1.0-test")
	sys := filepath.Join(dir, "sys")
	writeFile(t, filepath.Join(mods, "modules.alias"), aliasText)
	writeFile(t, filepath.Join(mods, "modules.dep"), depText)
	// Two virtio PCI functions; their virtio devices appear only once
	// virtio_pci is loaded.
	writeFile(t, filepath.Join(sys, "bus/pci/devices/0000:00:03.0/modalias"), "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00\n")
	writeFile(t, filepath.Join(sys, "bus/pci/devices/0000:00:04.0/modalias"), "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00\n")
	writeFile(t, filepath.Join(sys, "bus/pci/devices/0000:00:01.0/modalias"), "pci:v00008086d00007000sv00000000sd00000000bc06sc01i00\n")
	_, d := mustIndex(t)
	k := &fakeKernel{t: t, deps: d, loaded: map[string]bool{}, onLoad: map[string]func(){
		"virtio_pci": func() {
			writeFile(t, filepath.Join(sys, "bus/virtio/devices/virtio0/modalias"), "virtio:d00000001v00001AF4\n")
			writeFile(t, filepath.Join(sys, "bus/virtio/devices/virtio1/modalias"), "virtio:d00000002v00001AF4\n")
		},
	}}
	l := &Loader{Dir: mods, SysRoot: sys, Insert: k.insert}
	got, err := l.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"virtio_pci", "virtio_net", "virtio_blk", "net_failover"} {
		if !k.loaded[want] {
			t.Errorf("%s not loaded; loaded %v", want, got)
		}
	}
	if k.loaded["e1000"] || k.loaded["sd_mod"] {
		t.Errorf("loaded a module no device asked for: %v", k.order)
	}
	if k.refused != 0 {
		t.Errorf("dependency order from modules.dep should need no retries, got %d refusals (order %v)", k.refused, k.order)
	}
}

func TestRunMissingFiles(t *testing.T) {
	l := &Loader{Dir: t.TempDir(), SysRoot: t.TempDir(), Insert: func(string) error { return nil }}
	if _, err := l.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "modules.alias") {
		t.Errorf("err = %v, want one naming modules.alias", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(aliasText, depText, "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00")
	f.Add("alias [a-* x\n", "a.ko: b.ko\nb.ko: a.ko\n", "a")
	f.Fuzz(func(t *testing.T, alias, dep, modalias string) {
		ix, err := ParseAliases(strings.NewReader(alias))
		if err == nil {
			_ = ix.Match(modalias)
		}
		d, err := ParseDeps(strings.NewReader(dep))
		if err == nil {
			for n := range d {
				if order, err := d.Order(n); err == nil && (len(order) == 0 || order[len(order)-1] != n) {
					t.Fatalf("Order(%s) = %v does not end with %s", n, order, n)
				}
			}
		}
	})
}
