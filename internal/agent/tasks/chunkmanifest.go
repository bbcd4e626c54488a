package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/imaging"
)

// maxManifestBytes bounds the manifest's JSON: ~3.8 million chunks,
// 16 TiB of disk in 4 MiB chunks.
const maxManifestBytes = 256 << 20

// fetchManifest GETs the image's chunk manifest and checks it before
// anything is written: the SHA-256 of the bytes exactly as served against
// ManifestDigest (when the task has one), its shape, its size against
// VirtualSize and its raw SHA-256 against the task's. It returns the
// manifest and the digest of what was served.
func fetchManifest(ctx context.Context, f *fetcher, img *agentapi.Image) (*imaging.Manifest, string, error) {
	b, err := f.get(ctx, img.ManifestURL, maxManifestBytes, nil)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(b)
	digest := hex.EncodeToString(sum[:])
	if img.ManifestDigest != "" && digest != img.ManifestDigest {
		return nil, "", fmt.Errorf("manifest sha256 %s, task expects %s", digest, img.ManifestDigest)
	}
	var m imaging.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, "", fmt.Errorf("manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, "", err
	}
	if m.Size != img.VirtualSize {
		return nil, "", fmt.Errorf("manifest describes %d bytes of raw disk, task says %d", m.Size, img.VirtualSize)
	}
	if img.SHA256 != "" && m.RawSHA256 != img.SHA256 {
		return nil, "", fmt.Errorf("manifest raw sha256 %s, task expects %s", m.RawSHA256, img.SHA256)
	}
	if img.ChunkURL == "" && m.DataBytes() > 0 {
		return nil, "", fmt.Errorf("manifest names %d bytes of data chunks but the task has no chunk url", m.DataBytes())
	}
	return &m, digest, nil
}
