package images

import (
	"encoding/json"
	"testing"

	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/test/golden"
	"github.com/metal-iaas/metal/test/wiretest"
)

// TestWireUnchanged: images as /api/v1 shows them are byte for byte what
// metald served before its wire types moved to pkg/metalapi
// (testdata/wire, recorded from inventory.Image's own tags).
func TestWireUnchanged(t *testing.T) {
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b) + "\n"
	}
	golden.Check(t, "wire/images", js(toImages(wireImages())))
	golden.Check(t, "wire/image", js(toImage(wireImages()[0])))
	if got := js(toImages(nil)) + js(toImages(wireImages()[:0])); got != "null\n[]\n" {
		t.Errorf("empty lists: %q", got)
	}
	var img inventory.Image
	wiretest.Fill(&img)
	if unset := wiretest.Unset(toImage(img)); len(unset) > 0 {
		t.Errorf("toImage leaves %v unset", unset)
	}
}
