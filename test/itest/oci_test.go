package itest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/pkg/metalapi"
	"github.com/metal-iaas/metal/pkg/ocidisk"
	"github.com/metal-iaas/metal/test/registry"
)

// TestImageImportExportCLI drives metalctl image import|export against a
// real metald and two real registries (plain, and htpasswd basic auth):
// credentials by --password-stdin and by metald's REGISTRY_AUTH_FILE,
// refusals with non-zero exits naming why, an export read back, the
// imported image served to machines.
func TestImageImportExportCLI(t *testing.T) {
	plain := registry.Start(t, registry.Options{})
	private := registry.Start(t, registry.Options{User: "metal", Password: "s3cret"})
	disk := registry.Qcow2(t, 6, 42)
	raw := registry.RawSHA256(t, disk)
	l := registry.NewLayout(t)
	l.Tag(t, "cd", l.ContainerDisk(t, ocidisk.DefaultPlatform, "disk.qcow2", disk, true))
	private.Skopeo(t, l.Src("cd"), "private/disk:v1", "--format", "v2s2")
	ref := private.Ref("private/disk:v1")

	// metald's own auth file knows the private registry under another
	// user's name only once the test writes it; before, no file at all.
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", "")
	authFile := filepath.Join(home, "auth.json")
	t.Setenv("REGISTRY_AUTH_FILE", authFile)
	m := StartMetald(t, "", "--agent-dir", t.TempDir()) // an agent dir that exists: metald wants one since the shim chain

	imported := func(r Result, what string) metalapi.Image {
		t.Helper()
		wantOK(t, r, what)
		var img metalapi.Image
		if err := json.Unmarshal([]byte(r.Stdout), &img); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, r.Stdout)
		}
		if img.RawSHA256 != raw {
			t.Fatalf("%s: raw sha256 %s, qemu-img convert -O raw gives %s", what, img.RawSHA256, raw)
		}
		return img
	}

	wantFail(t, m.Ctl("image", "import", "cd", ref, "--plain-http"), "no credentials", "wants credentials")
	wantFail(t, m.Ctl("image", "import", "cd", ref), "TLS by default", "TLS is required unless --plain-http")
	wantFail(t, m.Ctl("image", "import", "cd", ref, "--plain-http", "--creds", "metal:wrong"), "wrong credentials", "credentials")
	wantFail(t, m.Ctl("image", "import", "cd", private.Ref("private/disk:v2"), "--plain-http", "--creds", "metal:s3cret"),
		"missing tag", "tag v2 in repository private/disk")
	wantFail(t, m.Ctl("image", "import", "cd", private.Ref("private/disk"), "--plain-http"), "no tag", "no tag or digest")
	wantFail(t, m.CtlStdin(strings.NewReader("s3cret\n"), "image", "import", "cd", ref, "--creds", "metal:x", "--password-stdin"),
		"password twice", "--password-stdin needs --creds USER")
	r := m.Ctl("image", "list", "-o", "json")
	if wantOK(t, r, "list"); strings.TrimSpace(r.Stdout) != "[]" {
		t.Fatalf("refused imports left images: %s", r.Stdout)
	}

	r = m.CtlStdin(strings.NewReader("s3cret\n"), "image", "import", "cd", ref, "--plain-http", "--creds", "metal", "--password-stdin", "-o", "json")
	img := imported(r, "import with --password-stdin")
	if !strings.Contains(r.Stderr, "pulling 127.0.0.1:") || !strings.Contains(r.Stderr, "containerdisk, disk/disk.qcow2") {
		t.Errorf("import did not say what it pulls: %q", r.Stderr)
	}
	wantFail(t, m.Ctl("image", "import", "cd", ref, "--plain-http", "--creds", "metal:s3cret"), "duplicate", "already exists")

	b, _ := json.Marshal(map[string]any{"auths": map[string]any{private.Addr: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte("metal:s3cret"))}}})
	if err := os.WriteFile(authFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	imported(m.Ctl("image", "import", "cd", ref, "--plain-http", "--replace", "-o", "json"), "import with metald's auth file")

	// Export to the plain registry, import it back by digest.
	r = m.Ctl("image", "export", "cd", plain.Ref("lib/cd:v1"), "--plain-http", "-o", "json")
	wantOK(t, r, "export")
	var out metalapi.ImageExported
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil || !strings.HasPrefix(out.Digest, "sha256:") {
		t.Fatalf("export answered %q (%v)", r.Stdout, err)
	}
	back := imported(m.Ctl("image", "import", "back", plain.Ref("lib/cd@"+out.Digest), "--plain-http", "-o", "json"), "import of the export")
	if back.SHA256 != img.SHA256 || back.VirtualSize != img.VirtualSize {
		t.Errorf("export read back as %+v, was %+v", back, img)
	}
	wantFail(t, m.Ctl("image", "export", "nope", plain.Ref("lib/x:v1"), "--plain-http"), "export of a missing image", "nope")

	resp, err := http.Get(m.URL + "/images/back")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Metal-Raw-SHA256") != raw {
		t.Errorf("/images/back: %s, raw %s", resp.Status, resp.Header.Get("X-Metal-Raw-SHA256"))
	}
}
