package images

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
	"github.com/metal-iaas/metal/pkg/ocidisk"
	"github.com/metal-iaas/metal/test/registry"
)

func ociLibrary(t *testing.T) *Service {
	t.Helper()
	store, err := inventory.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s, err := New(Config{Dir: t.TempDir(), ChunkSize: 256 << 10}, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkLikeUpload checks that img, imported, is what an upload of disk
// gives: raw SHA-256 of qemu-img convert -O raw, virtual size, chunk
// manifest.
func checkLikeUpload(t *testing.T, s *Service, img inventory.Image, disk []byte, wantRaw string) {
	t.Helper()
	if img.RawSHA256 != wantRaw {
		t.Errorf("%s: raw sha256 %s, qemu-img convert -O raw gives %s", img.Name, img.RawSHA256, wantRaw)
	}
	up, err := s.Ingest(context.Background(), "upload-of-"+img.Name, strings.NewReader(string(disk)))
	if err != nil {
		t.Fatalf("upload of the same disk: %v", err)
	}
	if up.RawSHA256 != img.RawSHA256 || up.VirtualSize != img.VirtualSize || up.SHA256 != img.SHA256 || up.Format != img.Format {
		t.Errorf("%s: imported %+v, uploaded %+v", img.Name, img, up)
	}
	mi, err := s.Manifest(context.Background(), img.Name)
	if err != nil {
		t.Fatal(err)
	}
	mu, err := s.Manifest(context.Background(), up.Name)
	if err != nil {
		t.Fatal(err)
	}
	if mi.Digest() != mu.Digest() {
		t.Errorf("%s: chunk manifest %s, the upload's %s", img.Name, mi.Digest(), mu.Digest())
	}
	if err := s.Delete(context.Background(), up.Name); err != nil {
		t.Fatal(err)
	}
}

var amd64 = ocidisk.DefaultPlatform

// TestImportShapes imports every accepted shape from a real registry,
// pushed by skopeo (containerDisks, an index) and through the HTTP API
// (artifacts), and checks each against qemu-img and an upload.
func TestImportShapes(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	s := ociLibrary(t)
	ctx := context.Background()
	d1, d2, d3 := registry.Qcow2(t, 4, 1), registry.Qcow2(t, 3, 2), registry.Qcow2(t, 2, 3)
	raw1, raw2, raw3 := registry.RawSHA256(t, d1), registry.RawSHA256(t, d2), registry.RawSHA256(t, d3)

	l := registry.NewLayout(t)
	l.Tag(t, "plain", l.ContainerDisk(t, amd64, "disk.qcow2", d1, false))
	l.Tag(t, "gz", l.ContainerDisk(t, amd64, "fedora.qcow2", d2, true))
	arm := ocidisk.Platform{OS: "linux", Architecture: "arm64"}
	l.Tag(t, "multi", l.Index(t, l.ContainerDisk(t, arm, "disk.qcow2", d3, true), l.ContainerDisk(t, amd64, "disk.qcow2", d1, true)))
	reg.Skopeo(t, l.Src("plain"), "cd/plain:v1")
	reg.Skopeo(t, l.Src("gz"), "cd/gz:v1")
	reg.Skopeo(t, l.Src("gz"), "cd/docker:v1", "--format", "v2s2")
	reg.Skopeo(t, l.Src("multi"), "cd/multi:v1", "--all")

	// OCI 1.1 artifact: artifactType, empty config, one qcow2 layer.
	cfg := reg.PushBlob(t, "art/qemu", []byte("{}"))
	lay := reg.PushBlob(t, "art/qemu", d2)
	art, _ := json.Marshal(ocidisk.Manifest{SchemaVersion: 2, MediaType: ocidisk.MediaOCIManifest,
		ArtifactType: "application/vnd.example.disk.v1",
		Config:       ocidisk.Descriptor{MediaType: ocidisk.MediaEmpty, Digest: cfg, Size: 2},
		Layers:       []ocidisk.Descriptor{{MediaType: "application/vnd.qemu.qcow2", Digest: lay, Size: int64(len(d2))}}})
	artDigest := reg.PutManifest(t, "art/qemu", "v1", ocidisk.MediaOCIManifest, art)

	// ORAS' defaults as Ironic's recipe pushes: the layer typed as a tar
	// but the disk itself, titled, with a disktype annotation; here a
	// gzip'd VMDK written by another tool (the shared samples, kept in
	// pkg/imaging/testdata).
	vmdk, err := os.ReadFile("../../pkg/imaging/testdata/dfvfs-ext2-monolithicSparse.vmdk.gz")
	if err != nil {
		t.Fatalf("test image: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(vmdk))
	if err != nil {
		t.Fatal(err)
	}
	plainVMDK, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	cfg = reg.PushBlob(t, "art/oras", []byte("{}"))
	lay = reg.PushBlob(t, "art/oras", vmdk)
	oras, _ := json.Marshal(ocidisk.Manifest{SchemaVersion: 2, MediaType: ocidisk.MediaOCIManifest,
		ArtifactType: "application/vnd.unknown.artifact.v1",
		Config:       ocidisk.Descriptor{MediaType: ocidisk.MediaEmpty, Digest: cfg, Size: 2},
		Layers: []ocidisk.Descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: lay, Size: int64(len(vmdk)),
			Annotations: map[string]string{ocidisk.AnnotationTitle: "ext2.vmdk.gz", ocidisk.AnnotationDiskType: "vmdk"}}}})
	reg.PutManifest(t, "art/oras", "v1", ocidisk.MediaOCIManifest, oras)

	for _, c := range []struct {
		name, ref, platform string
		disk                []byte
		raw                 string
	}{
		{"cd-plain", "cd/plain:v1", "", d1, raw1},
		{"cd-gz", "cd/gz:v1", "", d2, raw2},
		{"cd-docker", "cd/docker:v1", "", d2, raw2},
		{"index-default", "cd/multi:v1", "", d1, raw1},
		{"index-arm", "cd/multi:v1", "linux/arm64", d3, raw3},
		{"artifact", "art/qemu:v1", "", d2, raw2},
		{"artifact-digest", "art/qemu@" + artDigest, "", d2, raw2},
		{"oras", "art/oras:v1", "", vmdk, registry.RawSHA256(t, plainVMDK)},
	} {
		t.Run(c.name, func(t *testing.T) {
			img, err := s.Import(ctx, c.name, metalapi.ImageImport{Ref: reg.Ref(c.ref), Platform: c.platform, PlainHTTP: true})
			if err != nil {
				t.Fatalf("import %s: %v", c.ref, err)
			}
			checkLikeUpload(t, s, img, c.disk, c.raw)
		})
	}
	// The v2s2 copy really is Docker's.
	req, _ := http.NewRequest("GET", "http://"+reg.Addr+"/v2/cd/docker/manifests/v1", nil)
	req.Header.Set("Accept", ocidisk.MediaDockerManifest+", "+ocidisk.MediaOCIManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != ocidisk.MediaDockerManifest {
		t.Errorf("skopeo --format v2s2 stored %s", resp.Header.Get("Content-Type"))
	}
}

// refused checks that err is a refusal of kind want naming every word
// of names, and that nothing was stored.
func refused(t *testing.T, s *Service, err, want error, names ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("imported, want a refusal naming %q", names)
	}
	if !errors.Is(err, want) {
		t.Errorf("error %v is not %v", err, want)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not name %q", err, n)
		}
	}
	t.Logf("refused: %v", err)
	imgs, lerr := s.store.ListImages(context.Background())
	if lerr != nil || len(imgs) != 0 {
		t.Errorf("refused import left images %v (%v)", imgs, lerr)
	}
	left, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "*"))
	for _, f := range left {
		if filepath.Base(f) != "chunks" {
			t.Errorf("refused import left %s", f)
		}
	}
	chunks, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "chunks", "*", "*"))
	if len(chunks) != 0 {
		t.Errorf("refused import left %d chunks", len(chunks))
	}
}

// TestImportRefusals: every refusal names why and leaves nothing.
func TestImportRefusals(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	s := ociLibrary(t)
	ctx := context.Background()
	d := registry.Qcow2(t, 2, 7)

	l := registry.NewLayout(t)
	app, mt, diff := registry.TarLayer(t, [][2]string{{"bin/", ""}, {"bin/hello", "#!/bin/sh\necho hello\n"}}, true)
	l.Tag(t, "app", l.Image(t, amd64, []ocidisk.Descriptor{l.Blob(t, mt, app)}, []string{diff}))
	arm := ocidisk.Platform{OS: "linux", Architecture: "arm64"}
	ppc := ocidisk.Platform{OS: "linux", Architecture: "ppc64le"}
	l.Tag(t, "multi", l.Index(t, l.ContainerDisk(t, arm, "disk.qcow2", d, true), l.ContainerDisk(t, ppc, "disk.qcow2", d, true)))
	l.Tag(t, "cd", l.ContainerDisk(t, amd64, "disk.qcow2", d, true))
	reg.Skopeo(t, l.Src("app"), "app/hello:v1")
	reg.Skopeo(t, l.Src("multi"), "cd/multi:v1", "--all")
	reg.Skopeo(t, l.Src("cd"), "cd/corrupt:v1")

	// A Helm chart, pushed as Helm does.
	chartCfg := reg.PushBlob(t, "charts/web", []byte(`{"name":"web","version":"1.0.0","apiVersion":"v2"}`))
	chart := reg.PushBlob(t, "charts/web", app)
	hm, _ := json.Marshal(ocidisk.Manifest{SchemaVersion: 2, MediaType: ocidisk.MediaOCIManifest,
		Config: ocidisk.Descriptor{MediaType: "application/vnd.cncf.helm.config.v1+json", Digest: chartCfg, Size: 48},
		Layers: []ocidisk.Descriptor{{MediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip", Digest: chart, Size: int64(len(app))}}})
	reg.PutManifest(t, "charts/web", "1.0.0", ocidisk.MediaOCIManifest, hm)

	// An artifact whose blob the registry then serves altered.
	cfg := reg.PushBlob(t, "art/bad", []byte("{}"))
	badLayer := reg.PushBlob(t, "art/bad", d)
	lay := badLayer
	am, _ := json.Marshal(ocidisk.Manifest{SchemaVersion: 2, MediaType: ocidisk.MediaOCIManifest, ArtifactType: "application/vnd.example.disk.v1",
		Config: ocidisk.Descriptor{MediaType: ocidisk.MediaEmpty, Digest: cfg, Size: 2},
		Layers: []ocidisk.Descriptor{{MediaType: "application/vnd.qemu.qcow2", Digest: lay, Size: int64(len(d))}}})
	reg.PutManifest(t, "art/bad", "v1", ocidisk.MediaOCIManifest, am)
	reg.CorruptBlob(t, badLayer)
	// The containerDisk's layer likewise.
	var cdLayer string
	for _, f := range mustGlob(t, filepath.Join(l.Dir, "blobs", "sha256", "*")) {
		if b, _ := os.ReadFile(f); len(b) > 1000 && b[0] == 0x1f && b[1] == 0x8b {
			cdLayer = "sha256:" + filepath.Base(f)
		}
	}
	reg.CorruptBlob(t, cdLayer)

	// A truncated qcow2 pushed as an artifact: refused as uploads are.
	cfg = reg.PushBlob(t, "art/text", []byte("{}"))
	txt := d[:70000]
	lay = reg.PushBlob(t, "art/text", txt)
	tm, _ := json.Marshal(ocidisk.Manifest{SchemaVersion: 2, MediaType: ocidisk.MediaOCIManifest, ArtifactType: "application/vnd.example.disk.v1",
		Config: ocidisk.Descriptor{MediaType: ocidisk.MediaEmpty, Digest: cfg, Size: 2},
		Layers: []ocidisk.Descriptor{{MediaType: "application/vnd.qemu.qcow2", Digest: lay, Size: int64(len(txt))}}})
	reg.PutManifest(t, "art/text", "v1", ocidisk.MediaOCIManifest, tm)

	imp := func(ref, platform string, plain bool) error {
		_, err := s.Import(ctx, "x", metalapi.ImageImport{Ref: ref, Platform: platform, PlainHTTP: plain})
		return err
	}
	t.Run("missing-tag", func(t *testing.T) {
		refused(t, s, imp(reg.Ref("cd/corrupt:nope"), "", true), inventory.ErrNotFound, "tag nope", "cd/corrupt")
	})
	t.Run("missing-repo", func(t *testing.T) {
		refused(t, s, imp(reg.Ref("no/such:v1"), "", true), inventory.ErrNotFound, "tag v1", "no/such")
	})
	t.Run("missing-digest", func(t *testing.T) {
		dg := "sha256:" + strings.Repeat("ab", 32)
		refused(t, s, imp(reg.Ref("cd/corrupt@"+dg), "", true), inventory.ErrNotFound, dg)
	})
	t.Run("no-tag-in-ref", func(t *testing.T) {
		refused(t, s, imp(reg.Ref("cd/corrupt"), "", true), inventory.ErrInvalid, "no tag or digest")
	})
	t.Run("helm-chart", func(t *testing.T) {
		refused(t, s, imp(reg.Ref("charts/web:1.0.0"), "", true), inventory.ErrInvalid, "no disk", "Helm chart")
	})
	t.Run("app-image", func(t *testing.T) {
		refused(t, s, imp(reg.Ref("app/hello:v1"), "", true), inventory.ErrInvalid, "no disk", "disk/")
	})
	t.Run("platform-missing", func(t *testing.T) {
		refused(t, s, imp(reg.Ref("cd/multi:v1"), "", true), inventory.ErrInvalid, "linux/amd64", "linux/arm64", "linux/ppc64le")
	})
	t.Run("artifact-digest-mismatch", func(t *testing.T) {
		refused(t, s, imp(reg.Ref("art/bad:v1"), "", true), inventory.ErrInvalid, badLayer[:15])
	})
	t.Run("containerdisk-digest-mismatch", func(t *testing.T) {
		refused(t, s, imp(reg.Ref("cd/corrupt:v1"), "", true), inventory.ErrInvalid, cdLayer[:15])
	})
	t.Run("layer-over-the-limit", func(t *testing.T) {
		s.cfg.MaxUpload = 4096
		defer func() { s.cfg.MaxUpload = 1 << 40 }()
		refused(t, s, imp(reg.Ref("cd/multi:v1"), "linux/arm64", true), inventory.ErrInvalid, "4096-byte limit")
	})
	t.Run("truncated-disk", func(t *testing.T) {
		refused(t, s, imp(reg.Ref("art/text:v1"), "", true), inventory.ErrInvalid, "qcow2")
	})
	t.Run("plain-http-not-asked", func(t *testing.T) {
		refused(t, s, imp(reg.Ref("cd/corrupt:v1"), "", false), inventory.ErrInvalid, "plain HTTP refused")
	})
	t.Run("http-url-not-asked", func(t *testing.T) {
		refused(t, s, imp("http://"+reg.Addr+"/x.qcow2", "", false), inventory.ErrInvalid, "plain HTTP refused")
	})
}

func mustGlob(t *testing.T, p string) []string {
	t.Helper()
	m, err := filepath.Glob(p)
	if err != nil || len(m) == 0 {
		t.Fatalf("glob %s: %v", p, m)
	}
	return m
}
