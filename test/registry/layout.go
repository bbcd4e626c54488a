package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/metal-iaas/metal/pkg/ocidisk"
	"github.com/metal-iaas/metal/test/testenv"
)

// Layout is an OCI image layout directory that skopeo copies from
// (oci:DIR:TAG).
type Layout struct {
	Dir   string
	index []ocidisk.Descriptor
}

// NewLayout creates an empty layout.
func NewLayout(t testing.TB) *Layout {
	t.Helper()
	l := &Layout{Dir: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(l.Dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.Dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return l
}

// Blob stores b and returns its descriptor.
func (l *Layout) Blob(t testing.TB, mediaType string, b []byte) ocidisk.Descriptor {
	t.Helper()
	d := Digest(b)
	if err := os.WriteFile(filepath.Join(l.Dir, "blobs", "sha256", d[len("sha256:"):]), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return ocidisk.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

// Image stores an OCI container image (config and manifest) of layers,
// whose uncompressed tars are diffIDs' sources, for platform p.
func (l *Layout) Image(t testing.TB, p ocidisk.Platform, layers []ocidisk.Descriptor, diffIDs []string) ocidisk.Descriptor {
	t.Helper()
	cfg, _ := json.Marshal(map[string]any{
		"architecture": p.Architecture, "os": p.OS,
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
		"config": map[string]any{},
	})
	cd := l.Blob(t, ocidisk.MediaOCIConfig, cfg)
	m, _ := json.Marshal(ocidisk.Manifest{SchemaVersion: 2, MediaType: ocidisk.MediaOCIManifest, Config: cd, Layers: layers})
	d := l.Blob(t, ocidisk.MediaOCIManifest, m)
	d.Platform = &p
	return d
}

// Index stores an image index of manifests (with their platforms).
func (l *Layout) Index(t testing.TB, manifests ...ocidisk.Descriptor) ocidisk.Descriptor {
	t.Helper()
	b, _ := json.Marshal(ocidisk.Index{SchemaVersion: 2, MediaType: ocidisk.MediaOCIIndex, Manifests: manifests})
	return l.Blob(t, ocidisk.MediaOCIIndex, b)
}

// Tag names d in the layout's index.json (oci:DIR:TAG).
func (l *Layout) Tag(t testing.TB, tag string, d ocidisk.Descriptor) {
	t.Helper()
	d.Platform = nil
	d.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag}
	l.index = append(l.index, d)
	b, _ := json.Marshal(ocidisk.Index{SchemaVersion: 2, MediaType: ocidisk.MediaOCIIndex, Manifests: l.index})
	if err := os.WriteFile(filepath.Join(l.Dir, "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Src is skopeo's name of tag in the layout.
func (l *Layout) Src(tag string) string { return "oci:" + l.Dir + ":" + tag }

// TarLayer builds a layer tar holding files (path → content; a path
// ending in / is a directory), gzip'd when gz, and returns the layer and
// the diff ID (digest of the plain tar).
func TarLayer(t testing.TB, files [][2]string, gz bool) (layer []byte, mediaType, diffID string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		name, content := f[0], f[1]
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg, Uid: 107, Gid: 107}
		if name[len(name)-1] == '/' {
			h = &tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, content); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	plain := buf.Bytes()
	if !gz {
		return plain, "application/vnd.oci.image.layer.v1.tar", Digest(plain)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(plain)
	zw.Close()
	return z.Bytes(), "application/vnd.oci.image.layer.v1.tar+gzip", Digest(plain)
}

// ContainerDisk stores a KubeVirt containerDisk of disk (as
// disk/<file>) for platform p and returns its manifest's descriptor.
func (l *Layout) ContainerDisk(t testing.TB, p ocidisk.Platform, file string, disk []byte, gz bool) ocidisk.Descriptor {
	t.Helper()
	b, mt, diff := TarLayer(t, [][2]string{{"disk/", ""}, {"disk/" + file, string(disk)}}, gz)
	return l.Image(t, p, []ocidisk.Descriptor{l.Blob(t, mt, b)}, []string{diff})
}

// Qcow2 makes a qcow2 disk of mib MiB holding pseudo-random data (seeded)
// in a few places and holes elsewhere, and returns its bytes.
func Qcow2(t testing.TB, mib int, seed int64) []byte {
	t.Helper()
	qemuImg := testenv.Tool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(seed))
	if err := f.Truncate(int64(mib) << 20); err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < int64(mib)<<20; off += 3 << 19 { // 64 KiB of data every 1.5 MiB
		b := make([]byte, 64<<10)
		rng.Read(b)
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	q := filepath.Join(dir, "disk.qcow2")
	if out, err := exec.Command(qemuImg, "convert", "-f", "raw", "-O", "qcow2", raw, q).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	b, err := os.ReadFile(q)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RawSHA256 is the hex SHA-256 of `qemu-img convert -O raw` of disk.
func RawSHA256(t testing.TB, disk []byte) string {
	t.Helper()
	qemuImg := testenv.Tool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out.raw")
	if err := os.WriteFile(in, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(qemuImg, "convert", "-O", "raw", in, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert -O raw: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
