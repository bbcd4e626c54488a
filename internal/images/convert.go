package images

import (
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// The image API's edge: inventory records go out as pkg/metalapi types.

func toImage(img inventory.Image) metalapi.Image {
	return metalapi.Image{Name: img.Name, File: img.File, Format: img.Format, Chain: img.Chain, Size: img.Size,
		VirtualSize: img.VirtualSize, SHA256: img.SHA256, RawSHA256: img.RawSHA256, CreatedAt: img.CreatedAt}
}

func toImages(imgs []inventory.Image) []metalapi.Image {
	if imgs == nil {
		return nil
	}
	out := make([]metalapi.Image, len(imgs))
	for i, img := range imgs {
		out[i] = toImage(img)
	}
	return out
}
