package imagecli

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/metal-iaas/metal/pkg/imaging"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestInspectAgainstQemuImg: inspect's virtual size is qemu-img info's and
// its allocation accounts for every byte and at least the data written.
func TestInspectAgainstQemuImg(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := makeRawDisk(t, dir)
	for _, c := range []imageCase{imageCases[0], imageCases[1], imageCases[3], imageCases[4], imageCases[6], imageCases[9]} {
		t.Run(c.name, func(t *testing.T) {
			img, _ := c.build(t, dir, raw)
			var info struct {
				VirtualSize int64 `json:"virtual-size"`
			}
			if err := json.Unmarshal(run(t, dir, "qemu-img", "info", "--output=json", raw), &info); err != nil {
				t.Fatal(err)
			}
			output := "json"
			stdout, _, err := execute(t, NewInspectCmd(&output), nil, img)
			if err != nil {
				t.Fatal(err)
			}
			var rep Report
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatalf("%v: %s", err, stdout)
			}
			a := rep.Allocation
			if rep.VirtualSize != info.VirtualSize || a == nil {
				t.Fatalf("report %+v, qemu-img virtual size %d", rep, info.VirtualSize)
			}
			if a.DataBytes+a.ZeroBytes+a.HoleBytes != rep.VirtualSize || a.HoleBytes < 0 {
				t.Errorf("allocation %+v does not add up to %d", a, rep.VirtualSize)
			}
			// At least what was written, at most what qemu-img map calls data.
			if mapped := qemuMappedData(t, dir, img, c); a.DataBytes < nonZeroBytes || a.DataBytes > mapped {
				t.Errorf("data bytes %d: written %d, qemu-img map says %d", a.DataBytes, nonZeroBytes, mapped)
			}
			st, _ := os.Stat(img)
			if rep.InputBytes > st.Size() || rep.InputBytes < st.Size()-4096 {
				t.Errorf("input bytes %d, file has %d", rep.InputBytes, st.Size())
			}
			if c.wrap != nil && (len(rep.Chain) < 2 || rep.Chain[0] != "zstd") {
				t.Errorf("chain %v", rep.Chain)
			}

			// --quick reads the headers only.
			stdout, _, err = execute(t, NewInspectCmd(&output), nil, "--quick", img)
			if err != nil {
				t.Fatal(err)
			}
			rep = Report{}
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Allocation != nil || rep.Format == "" {
				t.Errorf("--quick report %+v", rep)
			}
		})
	}
}

// qemuMappedData sums the extents `qemu-img map` reports as data (of the
// uncompressed image for wrapped cases).
func qemuMappedData(t *testing.T, dir, img string, c imageCase) int64 {
	t.Helper()
	if c.wrap != nil {
		img = strings.TrimSuffix(img, filepath.Ext(img))
		if c.qemuArgs == nil {
			img = filepath.Join(dir, "disk.raw")
		} else {
			img = filepath.Join(dir, c.name+".img")
		}
	}
	var m []struct {
		Length int64 `json:"length"`
		Data   bool  `json:"data"`
	}
	if err := json.Unmarshal(run(t, dir, "qemu-img", "map", "--output=json", img), &m); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range m {
		if e.Data {
			n += e.Length
		}
	}
	return n
}

func TestInspectFromPipeYAMLAndTable(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	img, _ := imageCases[3].build(t, dir, makeRawDisk(t, dir)) // qcow2 zlib
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	output := "yaml"
	stdout, _, err := execute(t, NewInspectCmd(&output), f, "-")
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := yaml.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep["format"] != "qcow2" || rep["virtual_size"] != testDiskSize || rep["file"] != "-" || !strings.Contains(stdout, "virtual_size: 25165824") {
		t.Fatalf("yaml report %v", rep)
	}
	output = "table"
	stdout, _, err = execute(t, NewInspectCmd(&output), nil, img)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Format:", "qcow2", "Virtual size:  24.0 MiB (25165824 bytes)", "Data:", "Holes:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	output = "xml"
	if _, _, err := execute(t, NewInspectCmd(&output), nil, img); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Errorf("-o xml: %v", err)
	}
}

func TestInspectRefusesGarbage(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.qcow2")
	// qcow2 magic with an absurd header.
	if err := os.WriteFile(p, append([]byte("QFI\xfb\x00\x00\x00\x03"), bytes.Repeat([]byte{0xff}, 504)...), 0o644); err != nil {
		t.Fatal(err)
	}
	output := "json"
	stdout, _, err := execute(t, NewInspectCmd(&output), nil, p)
	if err == nil || stdout != "" {
		t.Fatalf("err = %v, stdout %q", err, stdout)
	}
	if !strings.Contains(err.Error(), p) {
		t.Errorf("error does not name the file: %v", err)
	}
}

// Rendering of a fixed report against golden files (-update rewrites).
func TestRenderGolden(t *testing.T) {
	rep := &Report{
		File: "appliance.ova", Format: "vmdk", Subformat: "streamOptimized",
		Chain: []string{"ova", "vmdk"}, VirtualSize: 20 << 30, InputBytes: 734003200,
		Allocation: &Allocation{DataBytes: 1610612736, DataExtents: 812, ZeroBytes: 1 << 20, HoleBytes: 20<<30 - 1610612736 - 1<<20},
		Package: &imaging.PackageInfo{
			OVFVersion: "2.0", Selected: "root", Manifest: "verified",
			Certificate: "CN=Example Signer, issued by CN=Example CA, valid until 2027-01-01 (not checked against a trust store)",
			Disks: []imaging.PackageDisk{
				{ID: "root", File: "images/root.vmdk", Format: "vmdk-streamOptimized", Capacity: 20 << 30, Compression: "gzip", ChunkSize: 256 << 20},
				{ID: "data", File: "data.vmdk", Format: "vmdk-streamOptimized", Capacity: 512 << 20},
			},
		},
	}
	quick := &Report{File: "-", Format: "raw", Chain: []string{"zstd", "raw"}, VirtualSize: -1, InputBytes: 1 << 20}
	for _, tt := range []struct {
		name   string
		rep    *Report
		format string
	}{
		{"ova.table", rep, "table"}, {"ova.json", rep, "json"}, {"ova.yaml", rep, "yaml"}, {"quick.table", quick, "table"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := renderReport(&b, tt.format, tt.rep); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "1024": 1024, "4K": 4096, "4KiB": 4096, "4kb": 4096, "2G": 2 << 30, "2GiB": 2 << 30, "64T": 64 << 40, "1E": 1 << 60} {
		got, err := parseSize(in, "--x")
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"x", "-1", "1.5G", "0", "8E", "99999999999999999999", "4Q", "G"} {
		if _, err := parseSize(in, "--x"); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}
