package imaging

import (
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// gunzipSample decompresses testdata/name.gz into a temporary file.
func gunzipSample(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), name)
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := io.Copy(o, zr); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRealWorldSamples converts images written by VMware, dfvfs's tools
// and others, and compares with qemu-img.
func TestRealWorldSamples(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	for _, c := range []struct {
		name, refFmt, format, sub string
	}{
		{"vmware-blank-streamOptimized.vmdk", "", "vmdk", "streamOptimized"},
		{"dfvfs-ext2-monolithicSparse.vmdk", "", "vmdk", "monolithicSparse"},
		{"dfvfs-ext2-dynamic.vhd", "vpc", "vhd", "dynamic"},
		{"dfvfs-ext2.qcow2", "", "qcow2", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := gunzipSample(t, c.name)
			want, size := qemuRef(t, img, c.refFmt)
			for _, path := range []string{img, filepath.Join("testdata", c.name+".gz")} {
				for _, pipe := range []bool{false, true} {
					res, err := convertOurs(t, path, pipe, Options{})
					if err != nil {
						t.Fatalf("%s pipe=%v: %v", path, pipe, err)
					}
					if res.SHA256 != want || res.Size != size {
						t.Fatalf("%s pipe=%v: %s (%d bytes), qemu-img %s (%d bytes)", path, pipe, res.SHA256, res.Size, want, size)
					}
					if res.Info.Format != c.format || (c.sub != "" && res.Info.Subformat != c.sub) {
						t.Errorf("info %+v", res.Info)
					}
				}
			}
		})
	}
}

func TestRealWorldDifferencingVHDRefused(t *testing.T) {
	img := gunzipSample(t, "dfvfs-differential.vhd")
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Open(f, Options{})
	if !errors.Is(err, ErrHostile) {
		t.Fatalf("differencing VHD: %v, want ErrHostile", err)
	}
	t.Logf("refused: %v", err)
}
