package oci

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/test/registry"
)

// TestStoreList: an empty store (no repository yet) lists nothing; each
// tag's manifest is read once per digest (New), its layer and
// annotations as Put wrote them; a deleted tag is gone from the list.
func TestStoreList(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	s, err := NewStore(reg.Ref("metal/images"), Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if es, err := s.List(ctx); err != nil || len(es) != 0 {
		t.Fatalf("empty store: %v %v", es, err)
	}
	disk := registry.Qcow2(t, 1, 3)
	path := filepath.Join(t.TempDir(), "d.qcow2")
	if err := os.WriteFile(path, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	f := File{Path: path, Size: int64(len(disk)), SHA256: strings.TrimPrefix(registry.Digest(disk), "sha256:"),
		MediaType: DiskMediaType([]string{"qcow2"}), Annotations: map[string]string{"k": "v1"}}
	for _, tag := range []string{"a", "b"} {
		if _, err := s.Put(ctx, tag, f, nil); err != nil {
			t.Fatal(err)
		}
	}
	list := func() map[string]Entry {
		t.Helper()
		es, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]Entry{}
		for _, e := range es {
			out[e.Image] = e
		}
		return out
	}
	es := list()
	if len(es) != 2 || !es["a"].New || es["a"].Err != nil || es["a"].File.Annotations["k"] != "v1" ||
		es["a"].File.Digest != registry.Digest(disk) || es["a"].File.Size != int64(len(disk)) {
		t.Fatalf("first list: %+v", es)
	}
	if es = list(); es["a"].New || es["b"].New {
		t.Errorf("unchanged tags read again: %+v", es)
	}
	f.Annotations = map[string]string{"k": "v2"}
	if _, err := s.Put(ctx, "b", f, nil); err != nil {
		t.Fatal(err)
	}
	if es = list(); es["a"].New || !es["b"].New || es["b"].File.Annotations["k"] != "v2" {
		t.Errorf("after b changed: %+v", es)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if es = list(); len(es) != 1 || es["b"].Image != "b" {
		t.Errorf("after a was deleted: %+v", es)
	}
}
