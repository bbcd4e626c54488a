package images

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/internal/oci"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
	"github.com/metal-iaas/metal/test/registry"
)

// TestImageStoreSharedAndCached: two libraries (two metalds) on one
// inventory and one registry store: what A stores, B serves with Range
// from the store through its cache, least recently served evicted first
// within CacheBytes; a blob the store serves altered is refused; removal
// through B removes it from the store.
func TestImageStoreSharedAndCached(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	st, err := oci.NewStore(reg.Ref("metal/images"), oci.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer inv.Close()
	log := slog.New(slog.DiscardHandler)
	a, err := New(Config{Dir: t.TempDir(), ImageStore: st}, inv, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	disks := map[string][]byte{}
	for i, n := range []string{"one", "two", "three"} {
		disks[n] = registry.Qcow2(t, 2, int64(100+i))
		if _, err := a.Ingest(ctx, n, bytes.NewReader(disks[n])); err != nil {
			t.Fatal(err)
		}
	}
	size := int64(len(disks["one"]))
	b, err := New(Config{Dir: t.TempDir(), ImageStore: st, CacheBytes: 2*size + size/2}, inv, log)
	if err != nil {
		t.Fatal(err)
	}
	cached := func() []string {
		var out []string
		for _, n := range []string{"one", "two", "three"} {
			if _, err := os.Stat(filepath.Join(b.cfg.Dir, n+".qcow2")); err == nil {
				out = append(out, n)
			}
		}
		return out
	}
	for _, n := range []string{"one", "two", "one", "three"} {
		req := httptest.NewRequest("GET", "/images/"+n, nil)
		req.Header.Set("Range", "bytes=100-4195")
		w := httptest.NewRecorder()
		b.ServeHTTP(w, req)
		if w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), disks[n][100:4196]) {
			t.Fatalf("B serves %s: %d, %d bytes (want the range of A's upload)", n, w.Code, w.Body.Len())
		}
		time.Sleep(10 * time.Millisecond) // distinct use times
	}
	if got := strings.Join(cached(), ","); got != "one,three" {
		t.Errorf("B's cache holds %s, want one,three (two least recently served)", got)
	}
	// B described what it fetched as A did: same chunk manifest.
	ma, err := a.Manifest(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	if mb, err := b.Manifest(ctx, "one"); err != nil || mb.Digest() != ma.Digest() {
		t.Errorf("B's chunk manifest of one: %v (A's %s)", err, ma.Digest())
	}
	// The store records the manifest (chunk size and digest) with the file.
	if a, err := st.Annotations(ctx, "one"); err != nil || a[AnnotationChunkManifest] != ma.Digest() || a[AnnotationChunkSize] != "4194304" {
		t.Errorf("store annotations of one: %v %v, want chunk manifest %s", a, err, ma.Digest())
	}
	// A third metald, configured with another chunk size, asked for a
	// chunk manifest (a provision starting there) before it served the
	// file: it fetches and describes it then, with the recorded chunk
	// size, and finds the recorded manifest.
	c, err := New(Config{Dir: t.TempDir(), ImageStore: st, ChunkSize: 1 << 20}, inv, log)
	if err != nil {
		t.Fatal(err)
	}
	if mc, err := c.Manifest(ctx, "one"); err != nil || mc.Digest() != ma.Digest() {
		t.Errorf("C's chunk manifest of one, not cached before: %v (A's %s)", err, ma.Digest())
	}
	// A store whose recorded manifest the file does not give is refused.
	three, _ := inv.GetImage(ctx, "three")
	ann, err := st.Annotations(ctx, "three")
	if err != nil {
		t.Fatal(err)
	}
	ann[AnnotationChunkManifest] = strings.Repeat("0", 64)
	if _, err := st.Put(ctx, "three", oci.File{Path: a.Path(three), Size: three.Size, SHA256: three.SHA256,
		MediaType: oci.DiskMediaType(three.Chain), Annotations: ann}, nil); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Dir: t.TempDir(), ImageStore: st}, inv, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Manifest(ctx, "three"); err == nil || !strings.Contains(err.Error(), "the store records") {
		t.Errorf("a recorded manifest the file does not give: %v, want refused", err)
	}

	// A file the store serves altered is refused, not cached.
	img, _ := inv.GetImage(ctx, "two")
	reg.CorruptBlob(t, "sha256:"+img.SHA256)
	w := httptest.NewRecorder()
	b.ServeHTTP(w, httptest.NewRequest("GET", "/images/two", nil))
	if w.Code != http.StatusInternalServerError || strings.Contains(strings.Join(cached(), ","), "two") {
		t.Errorf("altered blob: %d, cache %v", w.Code, cached())
	}
	left, _ := filepath.Glob(filepath.Join(b.cfg.Dir, ".fill-*"))
	if len(left) != 0 {
		t.Errorf("refused fill left %v", left)
	}

	if err := b.Delete(ctx, "three"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + reg.Addr + "/v2/metal/images/manifests/three")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("after removal the store answers %s for the tag", resp.Status)
	}
	if _, err := a.Export(ctx, "one", metalapiExport(reg.Ref("copy/one:v1"))); err != nil {
		t.Errorf("export of a stored image: %v", err)
	}
}

func metalapiExport(ref string) metalapi.ImageExport {
	return metalapi.ImageExport{Ref: ref, PlainHTTP: true}
}
