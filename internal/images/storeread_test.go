package images

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/internal/oci"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/ocidisk"
)

// FuzzFromStore: whatever a store's tag and annotations hold, reading
// them never panics, and what is accepted is a record metald can use: a
// valid name, a file name that stays in the image directory, a virtual
// size and file size within bounds, hex digests, a chain ending in the
// format.
func FuzzFromStore(f *testing.F) {
	f.Add("one", "qcow2", "qcow2", strings.Repeat("a", 64), "1048576", "", "", int64(4096))
	f.Add("two", "vmdk", "ova/gzip/vmdk", strings.Repeat("0", 64), "9223372036854775807", "4194304", strings.Repeat("b", 64), int64(1))
	f.Add("../x", "raw", "../raw", "ZZ", "-1", "12", "x", int64(-5))
	s, err := New(Config{Dir: f.TempDir()}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tag, disktype, chain, raw, vsize, chunkSize, chunkMan string, size int64) {
		a := map[string]string{ocidisk.AnnotationDiskType: disktype, AnnotationChain: chain, AnnotationRawSHA256: raw,
			AnnotationVirtualSize: vsize}
		if chunkSize != "" || chunkMan != "" {
			a[AnnotationChunkSize], a[AnnotationChunkManifest] = chunkSize, chunkMan
		}
		e := oci.Entry{Image: tag, File: ocidisk.Descriptor{Digest: "sha256:" + strings.Repeat("c", 64), Size: size, Annotations: a}}
		img, err := s.fromStore(e)
		if err != nil {
			return
		}
		if inventory.ValidateName("image name", img.Name) != nil || filepath.Base(img.File) != img.File ||
			img.File != img.Name+"."+img.Format || img.VirtualSize <= 0 || img.Size <= 0 || img.Size > s.cfg.MaxUpload ||
			len(img.RawSHA256) != 64 || img.Chain[len(img.Chain)-1] != img.Format {
			t.Fatalf("accepted %+v from %q %v", img, tag, a)
		}
	})
}
