package ocidisk

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

var (
	dg  = "sha256:" + strings.Repeat("a", 64)
	dg2 = "sha256:" + strings.Repeat("b", 64)
)

func manifest(cfg, artifactType string, layers ...Descriptor) []byte {
	b, _ := json.Marshal(Manifest{SchemaVersion: 2, MediaType: MediaOCIManifest, ArtifactType: artifactType,
		Config: Descriptor{MediaType: cfg, Digest: dg, Size: 2}, Layers: layers})
	return b
}

func TestClassify(t *testing.T) {
	tarL := Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: dg, Size: 10}
	qcow := Descriptor{MediaType: "application/vnd.qemu.qcow2", Digest: dg2, Size: 10}
	oras := Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: dg2, Size: 10,
		Annotations: map[string]string{AnnotationTitle: "disk.qcow2", AnnotationDiskType: "qcow2"}}
	readme := Descriptor{MediaType: "text/markdown", Digest: dg, Size: 10, Annotations: map[string]string{AnnotationTitle: "README.md"}}
	docker, _ := json.Marshal(Manifest{SchemaVersion: 2, MediaType: MediaDockerManifest,
		Config: Descriptor{MediaType: MediaDockerConfig, Digest: dg, Size: 2},
		Layers: []Descriptor{{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", Digest: dg2, Size: 5}, tarL}})
	for _, c := range []struct {
		name     string
		b        []byte
		kind     Kind
		layer    string // the first layer of the plan
		disktype string
		err      string
	}{
		{"containerdisk", manifest(MediaOCIConfig, "", tarL), ContainerDisk, dg, "", ""},
		{"docker", docker, ContainerDisk, dg, "", ""}, // top layer first
		{"artifact", manifest(MediaEmpty, "application/vnd.example.disk", qcow), Artifact, dg2, "", ""},
		{"oras", manifest(MediaEmpty, "application/vnd.unknown.artifact.v1", oras), Artifact, dg2, "qcow2", ""},
		{"oras-old", manifest(MediaUnknownConfig, "", oras), Artifact, dg2, "qcow2", ""},
		{"artifact-with-readme", manifest(MediaEmpty, "x", readme, qcow), Artifact, dg2, "", ""},
		{"helm", manifest("application/vnd.cncf.helm.config.v1+json", "", Descriptor{MediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip", Digest: dg, Size: 1}), "", "", "", "Helm chart"},
		{"cosign", manifest(MediaEmpty, "", Descriptor{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Digest: dg, Size: 1}), "", "", "", "cosign"},
		{"no-layers", manifest(MediaOCIConfig, ""), "", "", "", "no layers"},
		{"two-disks", manifest(MediaEmpty, "x", qcow, oras), "", "", "", "2 of the artifact's layers"},
		{"no-marked-disk", manifest(MediaEmpty, "x", readme, readme), "", "", "", "none of the artifact's 2 layers"},
		{"image-with-blob-layer", manifest(MediaOCIConfig, "", qcow), "", "", "", "not a tar"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseManifest(c.b)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Classify(m)
			if c.err != "" {
				if !errors.Is(err, ErrNoDisk) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %+v, %v; want ErrNoDisk naming %q", p, err, c.err)
				}
				return
			}
			if err != nil || p.Kind != c.kind || p.Layers[0].Digest != c.layer || p.DiskType != c.disktype {
				t.Fatalf("got %+v, %v", p, err)
			}
		})
	}
}

func TestParseManifestRefusals(t *testing.T) {
	for _, c := range []struct{ name, b, err string }{
		{"json", "{", "malformed"},
		{"schema1", `{"schemaVersion":1}`, "schemaVersion 1"},
		{"index", `{"schemaVersion":2,"mediaType":"` + MediaOCIIndex + `"}`, "not an image manifest"},
		{"digest", string(manifest(MediaEmpty, "", Descriptor{MediaType: "x", Digest: "sha256:../../etc", Size: 1})), "not sha256"},
		{"size", string(manifest(MediaEmpty, "", Descriptor{MediaType: "x", Digest: dg, Size: -1})), "size -1"},
	} {
		if _, err := ParseManifest([]byte(c.b)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want ErrMalformed naming %q", c.name, err, c.err)
		}
	}
}

func TestSelect(t *testing.T) {
	amd := Descriptor{MediaType: MediaOCIManifest, Digest: dg, Size: 1, Platform: &Platform{OS: "linux", Architecture: "amd64"}}
	arm := Descriptor{MediaType: MediaOCIManifest, Digest: dg2, Size: 1, Platform: &Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}
	att := Descriptor{MediaType: MediaOCIManifest, Digest: dg2, Size: 1} // an attestation: no platform
	b, _ := json.Marshal(Index{SchemaVersion: 2, MediaType: MediaOCIIndex, Manifests: []Descriptor{att, arm, amd}})
	ix, err := ParseIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := Select(ix, DefaultPlatform); err != nil || d.Digest != dg {
		t.Errorf("default: %v %v", d, err)
	}
	p, _ := ParsePlatform("linux/arm64")
	if d, err := Select(ix, p); err != nil || d.Digest != dg2 {
		t.Errorf("arm64: %v %v", d, err)
	}
	p, _ = ParsePlatform("linux/arm64/v7")
	if _, err := Select(ix, p); err == nil || !strings.Contains(err.Error(), "linux/arm64/v8, linux/amd64") {
		t.Errorf("arm64/v7: %v", err)
	}
	for _, bad := range []string{"linux", "linux/", "a/b/c/d", ""} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("platform %q accepted", bad)
		}
	}
}

func layerTar(t *testing.T, files ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if strings.HasSuffix(f, "/") {
			tw.WriteHeader(&tar.Header{Name: f, Typeflag: tar.TypeDir, Mode: 0o755})
			continue
		}
		if name, ok := strings.CutPrefix(f, "link:"); ok {
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: f, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len("content of " + f))})
		io.WriteString(tw, "content of "+f)
	}
	tw.Close()
	return buf.Bytes()
}

func TestDiskFile(t *testing.T) {
	plain := layerTar(t, "etc/", "etc/passwd", "./disk/", "link:disk/evil.img", "./disk/disk.qcow2", "disk/second.img")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	zs, _ := zstd.NewWriter(nil)
	for name, b := range map[string][]byte{"tar": plain, "gzip": gz.Bytes(), "zstd": zs.EncodeAll(plain, nil)} {
		file, r, release, err := DiskFile(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, _ := io.ReadAll(r)
		release()
		if file != "disk/disk.qcow2" || string(got) != "content of ./disk/disk.qcow2" {
			t.Errorf("%s: %s %q", name, file, got)
		}
	}
	_, _, release, err := DiskFile(bytes.NewReader(layerTar(t, "bin/", "bin/sh", "disk/sub/x.img")))
	release()
	if !errors.Is(err, ErrNotInLayer) {
		t.Errorf("no disk: %v", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add(manifest(MediaOCIConfig, "", Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: dg, Size: 1}))
	f.Add(manifest(MediaEmpty, "x", Descriptor{MediaType: "application/vnd.qemu.qcow2", Digest: dg, Size: 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		p, err := Classify(m)
		if err == nil && (len(p.Layers) == 0 || (p.Kind == Artifact && len(p.Layers) != 1)) {
			t.Fatalf("plan %+v", p)
		}
	})
}

func FuzzSelect(f *testing.F) {
	b, _ := json.Marshal(Index{SchemaVersion: 2, Manifests: []Descriptor{{MediaType: MediaOCIManifest, Digest: dg, Size: 1,
		Platform: &Platform{OS: "linux", Architecture: "amd64"}}}})
	f.Add(b, "linux/amd64")
	f.Fuzz(func(t *testing.T, b []byte, platform string) {
		ix, err := ParseIndex(b)
		if err != nil {
			return
		}
		p, err := ParsePlatform(platform)
		if err != nil {
			p = DefaultPlatform
		}
		if d, err := Select(ix, p); err == nil && (d.Platform == nil || d.Platform.OS != p.OS) {
			t.Fatalf("selected %+v for %s", d, p)
		}
	})
}

func FuzzDiskFile(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, r, release, err := DiskFile(bytes.NewReader(b))
		defer release()
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(r, 1<<20))
		}
	})
}
