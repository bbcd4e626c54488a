package images

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/internal/oci"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
	"github.com/metal-iaas/metal/pkg/ocidisk"
	"github.com/metal-iaas/metal/test/registry"
)

// TestImportAuth: a registry behind htpasswd basic auth is refused
// without credentials or with wrong ones, and read with them given or in
// metald's auth file (REGISTRY_AUTH_FILE).
func TestImportAuth(t *testing.T) {
	reg := registry.Start(t, registry.Options{User: "metal", Password: "s3cret"})
	s := ociLibrary(t)
	ctx := context.Background()
	d := registry.Qcow2(t, 2, 11)
	l := registry.NewLayout(t)
	l.Tag(t, "cd", l.ContainerDisk(t, amd64, "disk.qcow2", d, true))
	reg.Skopeo(t, l.Src("cd"), "private/disk:v1")
	ref := reg.Ref("private/disk:v1")
	// No auth file of this machine's user may answer.
	t.Setenv("HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("REGISTRY_AUTH_FILE", "")

	_, err := s.Import(ctx, "p", metalapi.ImageImport{Ref: ref, PlainHTTP: true})
	refused(t, s, err, inventory.ErrInvalid, "wants credentials")
	_, err = s.Import(ctx, "p", metalapi.ImageImport{Ref: ref, PlainHTTP: true, Username: "metal", Password: "wrong"})
	refused(t, s, err, inventory.ErrInvalid, "credentials")

	img, err := s.Import(ctx, "given", metalapi.ImageImport{Ref: ref, PlainHTTP: true, Username: "metal", Password: "s3cret"})
	if err != nil {
		t.Fatalf("with credentials: %v", err)
	}
	raw := registry.RawSHA256(t, d)
	if img.RawSHA256 != raw {
		t.Errorf("raw sha256 %s, want %s", img.RawSHA256, raw)
	}
	auth := filepath.Join(t.TempDir(), "auth.json")
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.Addr: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte("metal:s3cret"))}}})
	if err := os.WriteFile(auth, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REGISTRY_AUTH_FILE", auth)
	img, err = s.Import(ctx, "authfile", metalapi.ImageImport{Ref: ref, PlainHTTP: true})
	if err != nil {
		t.Fatalf("with REGISTRY_AUTH_FILE: %v", err)
	}
	if img.RawSHA256 != raw {
		t.Errorf("raw sha256 %s, want %s", img.RawSHA256, raw)
	}
}

// TestExportImport: an uploaded image pushed as an artifact reads back
// identical, and the artifact has the OCI 1.1 shape.
func TestExportImport(t *testing.T) {
	reg := registry.Start(t, registry.Options{User: "metal", Password: "pw"})
	s := ociLibrary(t)
	ctx := context.Background()
	d := registry.Qcow2(t, 3, 21)
	up, err := s.Ingest(ctx, "up", strings.NewReader(string(d)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Export(ctx, "up", metalapi.ImageExport{Ref: reg.Ref("lib/up:v1"), PlainHTTP: true})
	if !errors.Is(err, inventory.ErrInvalid) || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("export without credentials: %v", err)
	}
	out, err := s.Export(ctx, "up", metalapi.ImageExport{Ref: reg.Ref("lib/up:v1"), PlainHTTP: true, Username: "metal", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+reg.Addr+"/v2/lib/up/manifests/v1", nil)
	req.Header.Set("Accept", ocidisk.MediaOCIManifest)
	req.SetBasicAuth("metal", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var m ocidisk.Manifest
	json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if m.ArtifactType != oci.ArtifactType || m.Config.MediaType != ocidisk.MediaEmpty || len(m.Layers) != 1 ||
		m.Layers[0].MediaType != "application/vnd.qemu.qcow2" || m.Layers[0].Digest != "sha256:"+up.SHA256 ||
		m.Layers[0].Annotations[ocidisk.AnnotationDiskType] != "qcow2" || m.Layers[0].Annotations[AnnotationRawSHA256] != up.RawSHA256 {
		t.Errorf("pushed manifest %+v", m)
	}
	if resp.Header.Get("Docker-Content-Digest") != out.Digest {
		t.Errorf("export says digest %s, the registry %s", out.Digest, resp.Header.Get("Docker-Content-Digest"))
	}
	img, err := s.Import(ctx, "back", metalapi.ImageImport{Ref: reg.Ref("lib/up@" + out.Digest), PlainHTTP: true, Username: "metal", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	checkLikeUpload(t, s, img, d, registry.RawSHA256(t, d))
	if _, err := s.Export(ctx, "nope", metalapi.ImageExport{Ref: reg.Ref("lib/x:v1"), PlainHTTP: true}); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("export of a missing image: %v", err)
	}
}

// TestImportURL: an https:// URL is fetched with TLS verified (the test
// server's CA given through the transport); a 404 is refused.
func TestImportURL(t *testing.T) {
	d := registry.Qcow2(t, 2, 31)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/disk.qcow2" {
			http.NotFound(w, r)
			return
		}
		w.Write(d)
	}))
	defer ts.Close()
	s := ociLibrary(t)
	ctx := context.Background()
	_, err := s.Import(ctx, "u", metalapi.ImageImport{Ref: ts.URL + "/disk.qcow2"})
	refused(t, s, err, inventory.ErrInvalid, "certificate")
	s.cfg.OCI.Transport = ts.Client().Transport
	_, err = s.Import(ctx, "u", metalapi.ImageImport{Ref: ts.URL + "/nope.qcow2"})
	refused(t, s, err, inventory.ErrNotFound, "404")
	img, err := s.Import(ctx, "u", metalapi.ImageImport{Ref: ts.URL + "/disk.qcow2"})
	if err != nil {
		t.Fatal(err)
	}
	checkLikeUpload(t, s, img, d, registry.RawSHA256(t, d))
}

// TestImportBearer: a registry in the distribution spec's token mode
// (401 with WWW-Authenticate: Bearer realm=…; a token service that
// answers JWTs to basic credentials) is refused without credentials and
// read, and written by export, with them.
func TestImportBearer(t *testing.T) {
	reg := registry.Start(t, registry.Options{User: "metal", Password: "tok3n", Token: true})
	s := ociLibrary(t)
	ctx := context.Background()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("REGISTRY_AUTH_FILE", "")
	d := registry.Qcow2(t, 2, 51)
	l := registry.NewLayout(t)
	l.Tag(t, "cd", l.ContainerDisk(t, amd64, "disk.qcow2", d, false))
	reg.Skopeo(t, l.Src("cd"), "private/disk:v1")
	ref := reg.Ref("private/disk:v1")

	_, err := s.Import(ctx, "b", metalapi.ImageImport{Ref: ref, PlainHTTP: true})
	refused(t, s, err, inventory.ErrInvalid, "wants credentials")
	_, err = s.Import(ctx, "b", metalapi.ImageImport{Ref: ref, PlainHTTP: true, Username: "metal", Password: "nope"})
	refused(t, s, err, inventory.ErrInvalid, "credentials")
	before := reg.TokensIssued()
	img, err := s.Import(ctx, "b", metalapi.ImageImport{Ref: ref, PlainHTTP: true, Username: "metal", Password: "tok3n"})
	if err != nil {
		t.Fatalf("with credentials: %v", err)
	}
	if reg.TokensIssued() == before {
		t.Error("the import got no bearer token: the registry was not in token mode")
	}
	checkLikeUpload(t, s, img, d, registry.RawSHA256(t, d))
	if _, err := s.Export(ctx, "b", metalapi.ImageExport{Ref: reg.Ref("lib/b:v1"), PlainHTTP: true, Username: "metal", Password: "tok3n"}); err != nil {
		t.Fatalf("export with a bearer token: %v", err)
	}
}
