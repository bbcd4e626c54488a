package images

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metal-iaas/metal/internal/oci"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/ocidisk"
	"github.com/metal-iaas/metal/test/registry"
)

// library is one metald's image library on its own SQLite inventory.
func library(t *testing.T, ref string, cfg Config) (*Service, inventory.Store) {
	t.Helper()
	inv, err := inventory.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inv.Close() })
	if ref != "" {
		if cfg.ImageStore, err = oci.NewStore(ref, oci.Options{PlainHTTP: true}); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := New(cfg, inv, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s, inv
}

func names(t *testing.T, s *Service) []string {
	t.Helper()
	imgs, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, img := range imgs {
		out = append(out, img.Name)
	}
	return out
}

func serve(s *Service, path, rng string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

// TestStoreSyncSeparateInventories: two libraries (two metalds), each on
// its own SQLite inventory, one registry store. What A stores, B lists
// with A's record, serves with Range and describes with A's chunk
// manifest; an image A stores after B's list is found by B on a miss
// (/images/<name>, Image); a replacement through A updates B's record
// and drops B's stale cached file; a removal through A removes B's
// record and cached file; an image B held before the store is kept.
func TestStoreSyncSeparateInventories(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	ref := reg.Ref("metal/images")
	ctx := context.Background()
	a, _ := library(t, ref, Config{})
	dirB := t.TempDir()
	b, invB := library(t, ref, Config{Dir: dirB, SyncMinInterval: time.Nanosecond})
	if got := names(t, b); len(got) != 0 {
		t.Fatalf("B lists %v before anything was stored (repository not created yet)", got)
	}
	disks := map[string][]byte{}
	for i, n := range []string{"one", "two"} {
		disks[n] = registry.Qcow2(t, 2, int64(200+i))
		if _, err := a.Ingest(ctx, n, bytes.NewReader(disks[n])); err != nil {
			t.Fatal(err)
		}
	}
	// B holds "local", stored as before it was given the store.
	noStore, err := New(Config{Dir: dirB}, invB, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noStore.Ingest(ctx, "local", bytes.NewReader(registry.Qcow2(t, 1, 9))); err != nil {
		t.Fatal(err)
	}

	if got := strings.Join(names(t, b), ","); got != "local,one,two" {
		t.Fatalf("B lists %s, want local,one,two", got)
	}
	for _, n := range []string{"one", "two"} {
		ra, _ := a.store.GetImage(ctx, n)
		rb, err := b.store.GetImage(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if rb.File != ra.File || rb.Format != ra.Format || !slices.Equal(rb.Chain, ra.Chain) || rb.Size != ra.Size ||
			rb.VirtualSize != ra.VirtualSize || rb.SHA256 != ra.SHA256 || rb.RawSHA256 != ra.RawSHA256 ||
			!rb.CreatedAt.Equal(ra.CreatedAt.Truncate(time.Second)) {
			t.Errorf("B's record of %s: %+v, A's %+v", n, rb, ra)
		}
	}
	if w := serve(b, "/images/one", "bytes=100-4195"); w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), disks["one"][100:4196]) {
		t.Fatalf("B serves one: %d, %d bytes", w.Code, w.Body.Len())
	}
	ma, err := a.Manifest(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	w := serve(b, "/images/one/manifest", "")
	if w.Code != http.StatusOK || w.Header().Get("ETag") != `"`+ma.Digest()+`"` {
		t.Errorf("B's manifest of one: %d %s, want A's %s", w.Code, w.Header().Get("ETag"), ma.Digest())
	}

	// Stored through A after B's list: B finds it on a miss.
	disks["three"] = registry.Qcow2(t, 2, 203)
	if _, err := a.Ingest(ctx, "three", bytes.NewReader(disks["three"])); err != nil {
		t.Fatal(err)
	}
	if w := serve(b, "/images/three", "bytes=0-511"); w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), disks["three"][:512]) {
		t.Fatalf("B serves three, stored after its list: %d", w.Code)
	}
	disks["four"] = registry.Qcow2(t, 1, 204)
	if _, err := a.Ingest(ctx, "four", bytes.NewReader(disks["four"])); err != nil {
		t.Fatal(err)
	}
	if img, err := b.Image(ctx, "four"); err != nil || img.RawSHA256 != registry.RawSHA256(t, disks["four"]) {
		t.Errorf("B's lookup of four on a miss: %+v %v", img, err)
	}
	if _, err := b.Image(ctx, "nothing"); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("a name in neither: %v, want not found", err)
	}

	// Replaced through A: B's record follows, its cached file is dropped.
	if w := serve(b, "/images/two", ""); w.Code != http.StatusOK {
		t.Fatalf("B serves two: %d", w.Code)
	}
	oldTwo, _ := b.store.GetImage(ctx, "two")
	disks["two"] = registry.Qcow2(t, 3, 299)
	if _, err := a.Ingest(ctx, "two", bytes.NewReader(disks["two"])); err != nil {
		t.Fatal(err)
	}
	if res, err := b.Sync(ctx); err != nil || res.Updated != 1 || res.Added+res.Removed != 0 {
		t.Fatalf("B's sync after the replacement: %+v %v, want one update", res, err)
	}
	if _, err := os.Stat(b.Path(oldTwo)); err == nil {
		t.Errorf("B kept its stale cached file of two")
	}
	if w := serve(b, "/images/two", ""); w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), disks["two"]) {
		t.Errorf("B serves two after its replacement: %d, %d bytes (want the new %d)", w.Code, w.Body.Len(), len(disks["two"]))
	}

	// Removed through A: gone from B's list and cache; B's own image kept.
	if err := a.Delete(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	cachedOne, _ := b.store.GetImage(ctx, "one")
	if got := strings.Join(names(t, b), ","); got != "four,local,three,two" {
		t.Errorf("B lists %s after A removed one, want four,local,three,two", got)
	}
	if _, err := os.Stat(b.Path(cachedOne)); err == nil {
		t.Errorf("B kept the cached file of the removed image")
	}
	if w := serve(b, "/images/one", ""); w.Code != http.StatusNotFound {
		t.Errorf("B serves the removed image: %d", w.Code)
	}
	// Removed through B: gone from A's list (whose inventory still had it).
	if err := b.Delete(ctx, "three"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(t, a), ","); got != "four,two" {
		t.Errorf("A lists %s after B removed three, want four,two", got)
	}

	if got := testutil.ToFloat64(b.sync.changes.WithLabelValues("added")); got != 4 {
		t.Errorf("B counted %v additions, want 4", got)
	}
	if got := testutil.ToFloat64(b.sync.changes.WithLabelValues("removed")); got != 1 {
		t.Errorf("B counted %v removals, want 1", got)
	}
	evs, err := invB.ListEvents(ctx, inventory.EventFilter{Type: "image", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, e.Type+":"+e.Data["image"].(string))
	}
	for _, want := range []string{"image.added:one", "image.updated:two", "image.removed:one"} {
		if !slices.Contains(types, want) {
			t.Errorf("B's events %v lack %s", types, want)
		}
	}
}

// TestStoreSyncConcurrentLists: a burst of lists shares registry rounds
// (one in flight at a time), and each sees what was stored before it
// asked.
func TestStoreSyncConcurrentLists(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	ref := reg.Ref("metal/images")
	ctx := context.Background()
	a, _ := library(t, ref, Config{})
	b, _ := library(t, ref, Config{})
	if _, err := a.Ingest(ctx, "one", bytes.NewReader(registry.Qcow2(t, 1, 1))); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			imgs, err := b.List(ctx)
			if err == nil && (len(imgs) != 1 || imgs[0].Name != "one") {
				err = errors.New("listed " + strings.Join(namesOf(imgs), ","))
			}
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	syncs := testutil.ToFloat64(b.sync.syncs.WithLabelValues("ok"))
	if syncs < 1 || syncs > 3 {
		t.Errorf("20 concurrent lists made %v syncs, want 1 to 3", syncs)
	}
}

func namesOf(imgs []inventory.Image) []string {
	var out []string
	for _, i := range imgs {
		out = append(out, i.Name)
	}
	return out
}

// TestStoreSyncRefusesTags: tags of the store's prefix that are not
// images of the library — a container image pushed by skopeo, an
// artifact of another type, an index, and metald artifacts whose
// annotations are missing, malformed or hostile — are skipped, each with
// its reason (logged, an event, counted once per manifest), and never
// break the listing of the others.
func TestStoreSyncRefusesTags(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	ref := reg.Ref("metal/images")
	ctx := context.Background()
	a, _ := library(t, ref, Config{})
	disk := registry.Qcow2(t, 1, 5)
	good, err := a.Ingest(ctx, "good", bytes.NewReader(disk))
	if err != nil {
		t.Fatal(err)
	}
	// A container image (no disk) and an index, pushed by skopeo.
	l := registry.NewLayout(t)
	layer, mt, diffID := registry.TarLayer(t, [][2]string{{"etc/", ""}, {"etc/hostname", "x\n"}}, true)
	app := l.Image(t, ocidisk.DefaultPlatform, []ocidisk.Descriptor{l.Blob(t, mt, layer)}, []string{diffID})
	l.Tag(t, "app", app)
	l.Tag(t, "multi", l.Index(t, app))
	reg.Skopeo(t, l.Src("app"), "metal/images:app")
	reg.Skopeo(t, l.Src("multi"), "metal/images:multi", "--all")
	// An artifact of another type (an ORAS push), through the HTTP API.
	st := a.cfg.ImageStore
	cfg := reg.PushBlob(t, "metal/images", []byte("{}"))
	blob := reg.PushBlob(t, "metal/images", disk)
	m, _ := json.Marshal(ocidisk.Manifest{SchemaVersion: 2, MediaType: ocidisk.MediaOCIManifest, ArtifactType: "application/vnd.example.thing",
		Config: ocidisk.Descriptor{MediaType: ocidisk.MediaEmpty, Digest: cfg, Size: 2},
		Layers: []ocidisk.Descriptor{{MediaType: "application/vnd.qemu.qcow2", Digest: blob, Size: int64(len(disk))}}})
	reg.PutManifest(t, "metal/images", "oras", ocidisk.MediaOCIManifest, m)
	// metald artifacts with bad annotations.
	ann := func(edit func(map[string]string)) map[string]string {
		a := map[string]string{ocidisk.AnnotationTitle: good.File, ocidisk.AnnotationDiskType: "qcow2",
			AnnotationRawSHA256: good.RawSHA256, AnnotationVirtualSize: "1048576", AnnotationChain: "qcow2"}
		edit(a)
		return a
	}
	bad := map[string]struct {
		ann  map[string]string
		want string
	}{
		"no-raw":      {ann(func(a map[string]string) { delete(a, AnnotationRawSHA256) }), "no " + AnnotationRawSHA256},
		"bad-hex":     {ann(func(a map[string]string) { a[AnnotationRawSHA256] = strings.Repeat("Z", 64) }), "not 64 lower-case hex"},
		"huge":        {ann(func(a map[string]string) { a[AnnotationVirtualSize] = "9223372036854775807" }), "exceeds this metald's"},
		"negative":    {ann(func(a map[string]string) { a[AnnotationVirtualSize] = "-1" }), "not a positive number"},
		"no-chain":    {ann(func(a map[string]string) { delete(a, AnnotationChain) }), "no " + AnnotationChain},
		"bad-chain":   {ann(func(a map[string]string) { a[AnnotationChain] = "../etc/qcow2" }), "is not a format name"},
		"mismatch":    {ann(func(a map[string]string) { a[AnnotationChain] = "gzip/raw" }), "does not end in the disktype"},
		"bad-chunk":   {ann(func(a map[string]string) { a[AnnotationChunkSize] = "12" }), AnnotationChunkSize},
		"Upper":       {ann(func(map[string]string) {}), "image name"},
		"no-disktype": {ann(func(a map[string]string) { delete(a, ocidisk.AnnotationDiskType) }), "no disktype"},
	}
	for tag, c := range bad {
		if _, err := st.Put(ctx, tag, oci.File{Path: a.Path(good), Size: good.Size, SHA256: good.SHA256,
			MediaType: "application/vnd.qemu.qcow2", Annotations: c.ann}, nil); err != nil {
			t.Fatal(err)
		}
	}

	b, invB := library(t, ref, Config{})
	res, err := b.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 || res.Refused != len(bad)+3 {
		t.Errorf("sync: %+v, want 1 added, %d refused", res, len(bad)+3)
	}
	if got := strings.Join(names(t, b), ","); got != "good" {
		t.Errorf("B lists %s, want good alone", got)
	}
	evs, err := invB.ListEvents(ctx, inventory.EventFilter{Type: "image.store_refused", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, e := range evs {
		reasons[e.Data["image"].(string)] = e.Message
	}
	want := map[string]string{"app": "a container image, not a metald image", "multi": "image index",
		"oras": "an artifact of type application/vnd.example.thing"}
	for tag, c := range bad {
		want[tag] = c.want
	}
	for tag, w := range want {
		if !strings.Contains(reasons[tag], w) {
			t.Errorf("tag %s refused with %q, want a reason naming %q", tag, reasons[tag], w)
		}
	}
	// Counted and told once per manifest, not once per sync.
	for range 2 {
		if _, err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(b.sync.refused); got != float64(len(want)) {
		t.Errorf("refused tags counted %v times, want %d", got, len(want))
	}
	// A hostile file the store names with a true raw SHA-256 but a false
	// virtual size is refused when fetched.
	if _, err := st.Put(ctx, "liar", oci.File{Path: a.Path(good), Size: good.Size, SHA256: good.SHA256,
		MediaType: "application/vnd.qemu.qcow2", Annotations: ann(func(a map[string]string) { a[AnnotationVirtualSize] = "4096" })}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Sync(ctx); err != nil { // a miss within a second of the last sync would not start one
		t.Fatal(err)
	}
	if w := serve(b, "/images/liar", ""); w.Code != http.StatusInternalServerError {
		t.Errorf("a file whose virtual size is not the recorded one: served %d", w.Code)
	}
}

// TestStoreSyncUnreachable: a store that cannot be read fails the sync
// (counted) but not the list, and removes nothing, not even a name seen
// in the store before.
func TestStoreSyncUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	ctx := context.Background()
	b, inv := library(t, "oci://"+addr+"/metal/images", Config{})
	if err := inv.PutImage(ctx, inventory.Image{Name: "x", File: "x.qcow2", Format: "qcow2", Chain: []string{"qcow2"},
		Size: 1, VirtualSize: 1, SHA256: strings.Repeat("a", 64), RawSHA256: strings.Repeat("b", 64)}); err != nil {
		t.Fatal(err)
	}
	if err := b.markSeen("x"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Sync(ctx); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("sync of an unreachable store: %v, want an error naming it", err)
	}
	if got := strings.Join(names(t, b), ","); got != "x" {
		t.Errorf("list with the store unreachable: %q, want x", got)
	}
	if got := testutil.ToFloat64(b.sync.syncs.WithLabelValues("error")); got != 2 {
		t.Errorf("failed syncs counted %v, want 2", got)
	}
}
