package images

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/internal/api"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
	"github.com/metal-iaas/metal/pkg/ocidisk"
	"github.com/metal-iaas/metal/test/registry"
)

// TestImportRoutes: the import answers 201 and the image as JSON, or
// with Accept: application/x-ndjson progress lines ending with the image
// or the error; refusals found before the pull are ordinary error
// answers; export answers the pushed digest.
func TestImportRoutes(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	s := ociLibrary(t)
	d := registry.Qcow2(t, 2, 61)
	l := registry.NewLayout(t)
	md := l.ContainerDisk(t, amd64, "disk.qcow2", d, true)
	l.Tag(t, "cd", md)
	reg.Skopeo(t, l.Src("cd"), "r/disk:v1")
	gin.SetMode(gin.ReleaseMode)
	eng := gin.New()
	noAuth := func(c *gin.Context) {}
	s.Routes(eng, noAuth, api.New(s.store.(inventory.Store), slog.New(slog.DiscardHandler)).Fail)
	post := func(path, accept string, body any) *httptest.ResponseRecorder {
		b, _ := json.Marshal(body)
		req := httptest.NewRequest("POST", path, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		w := httptest.NewRecorder()
		eng.ServeHTTP(w, req)
		return w
	}
	ref := reg.Ref("r/disk:v1")
	raw := registry.RawSHA256(t, d)

	w := post(metalapi.ImageActionPath("a", metalapi.ActionImport), "", metalapi.ImageImport{Ref: ref, PlainHTTP: true})
	var img metalapi.Image
	if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &img) != nil || img.RawSHA256 != raw {
		t.Fatalf("import: %d %s", w.Code, w.Body)
	}

	w = post(metalapi.ImageActionPath("b", metalapi.ActionImport), metalapi.MediaNDJSON, metalapi.ImageImport{Ref: ref, PlainHTTP: true})
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != metalapi.MediaNDJSON {
		t.Fatalf("import (NDJSON): %d %s", w.Code, w.Header())
	}
	var lines []metalapi.ImportProgress
	sc := bufio.NewScanner(w.Body)
	for sc.Scan() {
		var p metalapi.ImportProgress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, p)
	}
	last := lines[len(lines)-1]
	if len(lines) < 2 || !strings.Contains(lines[0].Source, "r/disk@sha256:") || lines[0].Total <= 0 ||
		last.Image == nil || last.Image.RawSHA256 != raw || last.Done != last.Total {
		t.Fatalf("progress lines %+v", lines)
	}

	for _, c := range []struct {
		name, path string
		body       any
		status     int
		code, msg  string
	}{
		{"exists", metalapi.ImageActionPath("a", metalapi.ActionImport), metalapi.ImageImport{Ref: ref, PlainHTTP: true},
			409, metalapi.CodeConflict, "already exists"},
		{"no such tag", metalapi.ImageActionPath("c", metalapi.ActionImport), metalapi.ImageImport{Ref: reg.Ref("r/disk:v9"), PlainHTTP: true},
			404, metalapi.CodeNotFound, "tag v9"},
		{"bad platform", metalapi.ImageActionPath("c", metalapi.ActionImport), metalapi.ImageImport{Ref: ref, Platform: "amd64", PlainHTTP: true},
			400, metalapi.CodeInvalid, "OS/ARCH"},
		{"unknown field", metalapi.ImageActionPath("c", metalapi.ActionImport), map[string]any{"ref": ref, "insecure": true},
			400, metalapi.CodeInvalid, "insecure"},
		{"export of nothing", metalapi.ImageActionPath("zz", metalapi.ActionExport), metalapi.ImageExport{Ref: reg.Ref("x/y:1"), PlainHTTP: true},
			404, metalapi.CodeNotFound, ""},
	} {
		w := post(c.path, metalapi.MediaNDJSON, c.body)
		var e metalapi.Error
		if w.Code != c.status || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Code != c.code || !strings.Contains(e.Error, c.msg) {
			t.Errorf("%s: %d %s", c.name, w.Code, w.Body)
		}
	}
	// A refusal found during the pull ends the NDJSON stream.
	mb, err := os.ReadFile(filepath.Join(l.Dir, "blobs", "sha256", strings.TrimPrefix(md.Digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ocidisk.ParseManifest(mb)
	if err != nil {
		t.Fatal(err)
	}
	reg.CorruptBlob(t, m.Layers[0].Digest)
	w = post(metalapi.ImageActionPath("c", metalapi.ActionImport), metalapi.MediaNDJSON, metalapi.ImageImport{Ref: ref, PlainHTTP: true})
	body := strings.TrimSpace(w.Body.String())
	var end metalapi.ImportProgress
	if w.Code != http.StatusOK || json.Unmarshal([]byte(body[strings.LastIndexByte(body, '\n')+1:]), &end) != nil ||
		end.Error == nil || end.Error.Code != metalapi.CodeInvalid || !strings.Contains(end.Error.Error, m.Layers[0].Digest) {
		t.Errorf("import of an altered blob: %d %s", w.Code, body)
	}
	if _, err := s.store.GetImage(t.Context(), "c"); err == nil {
		t.Error("the refused import stored an image")
	}
	w = post(metalapi.ImageActionPath("a", metalapi.ActionExport), "", metalapi.ImageExport{Ref: reg.Ref("lib/a:v1"), PlainHTTP: true})
	var out metalapi.ImageExported
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &out) != nil || !strings.HasPrefix(out.Digest, "sha256:") {
		t.Fatalf("export: %d %s", w.Code, w.Body)
	}
}
