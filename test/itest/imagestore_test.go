package itest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/metalapi"
	"github.com/metal-iaas/metal/pkg/ocidisk"
	"github.com/metal-iaas/metal/test/registry"
)

// TestImageStoreTwoMetalds: two metald processes on one PostgreSQL and
// one image store (metald serve --image-store oci://…): an image uploaded
// through A is listed by B and served by B, with Range, with A stopped —
// B fetches it from the store into its cache; removing it through B
// removes it from the store.
func TestImageStoreTwoMetalds(t *testing.T) {
	url := startPostgres(t)
	reg := registry.Start(t, registry.Options{User: "metal", Password: "pw"})
	// The store's credentials come from each metald's auth file.
	home := t.TempDir()
	auth := filepath.Join(home, "auth.json")
	b64 := "bWV0YWw6cHc=" // metal:pw
	if err := os.WriteFile(auth, fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, reg.Addr, b64), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("REGISTRY_AUTH_FILE", auth)
	t.Setenv("METALD_DB", url)
	store := []string{"--dhcp-mode", "off", "--agent-dir", t.TempDir(), "--image-store", reg.Ref("metal/images"), "--image-store-plain-http"}
	a := StartMetald(t, "", store...)
	dirB := sharedKeyDir(t, a)
	b := StartMetald(t, dirB, append(store, "--image-cache-size", "100000000")...)

	disk := registry.Qcow2(t, 8, 77)
	file := filepath.Join(t.TempDir(), "disk.qcow2")
	if err := os.WriteFile(file, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	wantOK(t, a.Ctl("image", "upload", file, "--name", "shared"), "upload through A")
	if err := a.Stop(); err != nil {
		t.Fatalf("stop A: %v", err)
	}

	r := b.Ctl("image", "list", "-o", "json")
	wantOK(t, r, "list through B")
	var imgs []metalapi.Image
	if err := json.Unmarshal([]byte(r.Stdout), &imgs); err != nil || len(imgs) != 1 || imgs[0].Name != "shared" ||
		imgs[0].RawSHA256 != registry.RawSHA256(t, disk) {
		t.Fatalf("B lists %s (%v)", r.Stdout, err)
	}
	wantRange(t, b.URL+"/images/shared", disk)
	if !b.LogHas("image fetched from the store", 5*time.Second) {
		t.Errorf("B did not say it fetched the image from the store:\n%s", b.Log())
	}

	wantOK(t, b.Ctl("image", "rm", "shared"), "rm through B")
	req, _ := http.NewRequest("GET", "http://"+reg.Addr+"/v2/metal/images/manifests/shared", nil)
	req.SetBasicAuth("metal", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("after rm the store answers %s for the image's tag", resp.Status)
	}
}

// TestImageStoreSeparateInventories: two metald processes, each with its
// own SQLite inventory, one image store: the library is read back from
// the store. An image uploaded through A is listed by B and served by B,
// with Range, with A stopped; an image put into the store by someone
// else's metald is listed too, a foreign tag in the prefix is not (and
// does not break the list); removed through B, it is gone from A's list
// once A is back. A provision on B finds A's image before B listed it.
func TestImageStoreSeparateInventories(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	t.Setenv("METALD_DB", "")
	store := []string{"--dhcp-mode", "off", "--agent-dir", t.TempDir(), "--image-store", reg.Ref("metal/images"), "--image-store-plain-http"}
	a := StartMetald(t, "", store...)
	b := StartMetald(t, "", store...)

	disk := registry.Qcow2(t, 8, 78)
	file := filepath.Join(t.TempDir(), "disk.qcow2")
	if err := os.WriteFile(file, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	wantOK(t, a.Ctl("image", "upload", file, "--name", "shared"), "upload through A")
	// A foreign tag in the prefix: a container image (skopeo).
	l := registry.NewLayout(t)
	layer, mt, diffID := registry.TarLayer(t, [][2]string{{"etc/", ""}, {"etc/hostname", "x\n"}}, true)
	app := l.Image(t, ocidisk.DefaultPlatform, []ocidisk.Descriptor{l.Blob(t, mt, layer)}, []string{diffID})
	l.Tag(t, "app", app)
	reg.Skopeo(t, l.Src("app"), "metal/images:app")
	if err := a.Stop(); err != nil {
		t.Fatalf("stop A: %v", err)
	}

	// A provision on B finds the image B has not listed yet (a lookup
	// miss reads the store; at most once a second, hence the wait).
	wantOK(t, b.Ctl("machine", "add", "p1", "--mac", "52:54:00:5e:00:01"), "add p1 on B")
	wantOK(t, b.Ctl("machine", "edit", "p1", "--state", "ready"), "p1 ready")
	time.Sleep(1100 * time.Millisecond)
	wantOK(t, b.Ctl("provision", "p1", "--image", "shared"), "provision p1 on B with A's image")

	list := func(m *Metald, who string) []metalapi.Image {
		t.Helper()
		r := m.Ctl("image", "list", "-o", "json")
		wantOK(t, r, "list through "+who)
		var imgs []metalapi.Image
		if err := json.Unmarshal([]byte(r.Stdout), &imgs); err != nil {
			t.Fatalf("list through %s: %v\n%s", who, err, r.Stdout)
		}
		return imgs
	}
	imgs := list(b, "B")
	if len(imgs) != 1 || imgs[0].Name != "shared" || imgs[0].RawSHA256 != registry.RawSHA256(t, disk) {
		t.Fatalf("B lists %+v, want shared alone", imgs)
	}
	wantRange(t, b.URL+"/images/shared", disk)
	for _, want := range []string{"image added from the store", "image fetched from the store", `tag skipped`, `tag=app`} {
		if !b.LogHas(want, 5*time.Second) {
			t.Errorf("B's log lacks %q:\n%s", want, b.Log())
		}
	}
	resp, err := http.Get(b.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"metald_image_store_tags_refused_total 1", `metald_image_store_changes_total{change="added"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("B's /metrics lacks %s", want)
		}
	}

	wantOK(t, b.Ctl("image", "rm", "shared"), "rm through B")
	a.Start()
	if imgs := list(a, "A"); len(imgs) != 0 {
		t.Errorf("A lists %+v after B removed shared, want nothing", imgs)
	}
	if r := a.Ctl("image", "show", "shared"); r.Code == 0 {
		t.Errorf("A shows the removed image: %s", r.Stdout)
	}
}

// wantRange checks that url serves bytes 1000-99999 of disk as a 206.
func wantRange(t *testing.T, url string, disk []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Range", "bytes=1000-99999")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, disk[1000:100000]) {
		t.Fatalf("%s: %s, %d bytes, want 206 with bytes 1000-99999", url, resp.Status, len(got))
	}
}
