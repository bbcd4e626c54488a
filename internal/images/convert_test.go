package images

import (
	"testing"

	"github.com/metal-iaas/metal/test/wiretest"
)

// TestWireUnchanged: images as /api/v1 shows them are byte for byte what
// metald served before its wire types moved to pkg/metalapi
// (testdata/wire, recorded from inventory.Image's own tags).
func TestWireUnchanged(t *testing.T) {
	wiretest.CheckList(t, "image", wireImages(), toImage, toImages)
}
