package imaging

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// corpusCase is one image qemu-img makes from the test disk.
type corpusCase struct {
	name    string
	format  string   // qemu-img -O
	args    []string // extra convert arguments
	refFmt  string   // qemu-img -f for the reference conversion
	open    Options  // options for Open
	wantFmt string   // Info.Format
}

var corpusCases = []corpusCase{
	{name: "raw", format: "raw", wantFmt: "raw"},
	{name: "qcow2-v2", format: "qcow2", args: []string{"-o", "compat=0.10"}, wantFmt: "qcow2"},
	{name: "qcow2-v3", format: "qcow2", args: []string{"-o", "compat=1.1"}, wantFmt: "qcow2"},
	{name: "qcow2-4k", format: "qcow2", args: []string{"-o", "cluster_size=4096"}, wantFmt: "qcow2"},
	{name: "qcow2-2m", format: "qcow2", args: []string{"-o", "cluster_size=2M"}, wantFmt: "qcow2"},
	{name: "qcow2-512", format: "qcow2", args: []string{"-o", "cluster_size=512"}, wantFmt: "qcow2"},
	{name: "qcow2-zlib", format: "qcow2", args: []string{"-c"}, wantFmt: "qcow2"},
	{name: "qcow2-zstd", format: "qcow2", args: []string{"-c", "-o", "compression_type=zstd"}, wantFmt: "qcow2"},
	{name: "qcow2-v2-zlib-4k", format: "qcow2", args: []string{"-c", "-o", "compat=0.10,cluster_size=4096"}, wantFmt: "qcow2"},
	{name: "qcow2-zstd-2m", format: "qcow2", args: []string{"-c", "-o", "compression_type=zstd,cluster_size=2M"}, wantFmt: "qcow2"},
	{name: "vmdk-stream", format: "vmdk", args: []string{"-o", "subformat=streamOptimized"}, wantFmt: "vmdk"},
	{name: "vmdk-sparse", format: "vmdk", args: []string{"-o", "subformat=monolithicSparse"}, wantFmt: "vmdk"},
	{name: "vpc-dynamic", format: "vpc", args: []string{"-o", "subformat=dynamic"}, refFmt: "vpc", wantFmt: "vhd"},
	{name: "vpc-dynamic-force", format: "vpc", args: []string{"-o", "subformat=dynamic,force_size=on"}, refFmt: "vpc", wantFmt: "vhd"},
	{name: "vpc-fixed", format: "vpc", args: []string{"-o", "subformat=fixed,force_size=on"}, refFmt: "vpc", open: Options{Format: "vhd"}, wantFmt: "vhd"},
	{name: "vpc-fixed-chs", format: "vpc", args: []string{"-o", "subformat=fixed"}, refFmt: "vpc", open: Options{Format: "vhd"}, wantFmt: "vhd"},
	{name: "vhdx-dynamic", format: "vhdx", wantFmt: "vhdx"},
	{name: "vhdx-dynamic-1m", format: "vhdx", args: []string{"-o", "block_size=1M"}, wantFmt: "vhdx"},
	{name: "vhdx-fixed", format: "vhdx", args: []string{"-o", "subformat=fixed,block_size=8M"}, wantFmt: "vhdx"},
}

// wrappers compress an image with a CLI tool.
var wrappers = []struct {
	name, tool, pkg string
	args            []string
}{
	{"gzip", "gzip", "gzip", []string{"-1", "-k", "-c"}},
	{"zstd", "zstd", "zstd", []string{"-1", "-q", "-c"}},
	{"xz", "xz", "xz-utils", []string{"-0", "-T1", "-k", "-c"}},
	{"bzip2", "bzip2", "bzip2", []string{"-1", "-k", "-c"}},
}

// testDiskSize is a multiple of 512 but of no cluster or block size.
const testDiskSize = 12<<20 + 7*512

func buildCase(t *testing.T, dir, raw string, c corpusCase) string {
	t.Helper()
	img := filepath.Join(dir, c.name+"."+c.format)
	if c.format == "raw" {
		return raw
	}
	run(t, "qemu-img", append(append([]string{"convert", "-f", "raw", "-O", c.format}, c.args...), raw, img)...)
	return img
}

func compress(t *testing.T, img, tool string, args []string) string {
	t.Helper()
	out := img + "." + tool
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(tool, append(args, img)...)
	cmd.Stdout, cmd.Stderr = f, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v %s", tool, err, stderr.Bytes())
	}
	return out
}

func TestCorpusMatchesQemuImg(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	testDisk(t, raw, testDiskSize)
	for _, c := range corpusCases {
		t.Run(c.name, func(t *testing.T) {
			img := buildCase(t, dir, raw, c)
			want, wantSize := qemuRef(t, img, c.refFmt)
			for _, pipe := range []bool{false, true} {
				res, err := convertOurs(t, img, pipe, c.open)
				if err != nil {
					t.Fatalf("pipe=%v: %v", pipe, err)
				}
				if res.SHA256 != want || res.Size != wantSize {
					t.Fatalf("pipe=%v: got %s (%d bytes), qemu-img %s (%d bytes)", pipe, res.SHA256, res.Size, want, wantSize)
				}
				if res.Info.Format != c.wantFmt {
					t.Errorf("format %q, want %q", res.Info.Format, c.wantFmt)
				}
			}
			for _, w := range wrappers {
				requireTool(t, w.tool, w.pkg)
				z := compress(t, img, w.tool, w.args)
				res, err := convertOurs(t, z, true, c.open)
				if err != nil {
					t.Fatalf("%s: %v", w.name, err)
				}
				if res.SHA256 != want {
					t.Fatalf("%s: got %s, qemu-img %s", w.name, res.SHA256, want)
				}
				if len(res.Info.Chain) != 2 || res.Info.Chain[0] != w.name {
					t.Errorf("%s: chain %v", w.name, res.Info.Chain)
				}
				os.Remove(z)
			}
		})
	}
}

func TestAllowedEnforcedOnEveryLayer(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	requireTool(t, "gzip", "gzip")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	testDisk(t, raw, 1<<20)
	img := buildCase(t, dir, raw, corpusCase{name: "q", format: "qcow2"})
	z := compress(t, img, "gzip", []string{"-1", "-k", "-c"})
	for _, allowed := range [][]string{{"qcow2"}, {"gzip", "raw"}} {
		_, err := convertOurs(t, z, true, Options{Allowed: allowed})
		if !errors.Is(err, ErrNotAllowed) {
			t.Errorf("allowed %v: err %v, want ErrNotAllowed", allowed, err)
		}
	}
	if _, err := convertOurs(t, z, true, Options{Allowed: []string{"gzip", "qcow2"}}); err != nil {
		t.Errorf("gzip+qcow2 allowed: %v", err)
	}
}

func TestRawUnknownSizeFromPipe(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "odd.raw")
	if err := os.WriteFile(raw, []byte(strings.Repeat("x", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := convertOurs(t, raw, true, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != 1000 || res.Info.VirtualSize != -1 {
		t.Fatalf("size %d, virtual size %d", res.Size, res.Info.VirtualSize)
	}
	if _, err := convertOurs(t, raw, true, Options{MaxVirtualSize: 512}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over MaxVirtualSize: %v", err)
	}
}

// TestWrittenOutOfOrder uses qemu-io to write guest regions in an order
// other than the guest order (so data precedes the tables mapping it and
// the file order differs from the disk order) and to make explicit zero
// clusters and zeroed grains.
func TestWrittenOutOfOrder(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	requireTool(t, "qemu-io", "qemu-utils")
	dir := t.TempDir()
	writes := []string{"-c", "write -P 0xaa 6M 64k", "-c", "write -P 0xbb 0 64k", "-c", "write -P 0xcc 3M 8k", "-c", "write -z 1M 64k", "-c", "write -P 0xdd 7M 1M"}
	for _, c := range []struct {
		name, format string
		opts         []string
	}{
		{"qcow2-v3-4k", "qcow2", []string{"-o", "cluster_size=4096"}},
		{"qcow2-v2", "qcow2", []string{"-o", "compat=0.10"}},
		{"vmdk-zeroed-grain", "vmdk", []string{"-o", "zeroed_grain=on"}},
		{"vpc", "vpc", nil},
		{"vhdx", "vhdx", []string{"-o", "block_size=1M"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(dir, c.name)
			run(t, "qemu-img", append(append([]string{"create", "-f", c.format}, c.opts...), img, "8M")...)
			run(t, "qemu-io", append([]string{"-f", c.format}, append(writes, img)...)...)
			ref := c.format
			want, size := qemuRef(t, img, ref)
			for _, pipe := range []bool{false, true} {
				res, err := convertOurs(t, img, pipe, Options{})
				if err != nil {
					t.Fatalf("pipe=%v: %v", pipe, err)
				}
				if res.SHA256 != want || res.Size != size {
					t.Fatalf("pipe=%v: %s, qemu-img %s", pipe, res.SHA256, want)
				}
			}
			if c.format == "qcow2" {
				// The data of guest 6M precedes everything of guest 0:
				// with a tiny buffer the bound is hit and named.
				_, err := convertOurs(t, img, true, Options{MaxBuffer: 16 << 10})
				if !errors.Is(err, ErrBufferLimit) || !strings.Contains(err.Error(), "16384") {
					t.Fatalf("MaxBuffer 16 KiB: %v, want ErrBufferLimit naming the bound", err)
				}
				t.Logf("tiny buffer: %v", err)
			}
		})
	}
}

// TestCompressionWindowLimits: a compression layer may not demand a
// dictionary or window beyond 128 MiB (allocated before any data).
func TestCompressionWindowLimits(t *testing.T) {
	requireTool(t, "xz", "xz-utils")
	requireTool(t, "zstd", "zstd")
	dir := t.TempDir()
	in := filepath.Join(dir, "x")
	testDisk(t, in, 256<<10)
	for _, c := range []struct {
		name string
		cmd  []string
		want error
	}{
		{"xz -9", []string{"xz", "-9", "-k", "-c", in}, nil},
		{"xz 256 MiB dictionary", []string{"xz", "--lzma2=dict=256MiB", "-k", "-c", in}, ErrUnsupported},
		{"zstd --long=27", []string{"zstd", "-q", "--long=27", "-c"}, nil},
		{"zstd --long=30", []string{"zstd", "-q", "--long=30", "-c"}, ErrUnsupported},
	} {
		out := filepath.Join(dir, "c")
		var stdout bytes.Buffer
		cmd := exec.Command(c.cmd[0], c.cmd[1:]...)
		cmd.Stdout = &stdout
		if c.cmd[0] == "zstd" {
			// From a pipe zstd can't shrink the window to the input size.
			f, err := os.Open(in)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd.Stdin = f
		}
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		os.WriteFile(out, stdout.Bytes(), 0o644)
		_, err := convertOurs(t, out, true, Options{})
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %v", c.name, err, c.want)
		}
		t.Logf("%s: %v", c.name, err)
	}
}
