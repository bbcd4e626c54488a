package images

import (
	"time"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// The wire fixtures: images whose JSON as /api/v1 serves it is recorded
// in testdata/wire/*.golden (recorded before the wire types moved to
// pkg/metalapi, so that the move changes no byte).

var wireTime = time.Date(2026, 12, 6, 14, 30, 5, 123456789, time.UTC)

func wireImages() []inventory.Image {
	return []inventory.Image{{
		Name: "debian-12", File: "debian-12.qcow2", Format: "qcow2", Chain: []string{"xz", "qcow2"},
		Size: 123456789, VirtualSize: 2147483648, SHA256: "aa", RawSHA256: "bb", CreatedAt: wireTime,
	}, {Name: "raw", Format: "raw", Chain: []string{}}, {}}
}
