package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/metal-iaas/metal/internal/oci"
	"github.com/metal-iaas/metal/pkg/imaging"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/ocidisk"
)

// With an image store (Config.ImageStore, metald serve --image-store
// oci://HOST/PREFIX) every stored image's file is also pushed to the
// registry, the one copy several metalds share (their records are shared
// by the inventory: one PostgreSQL); the image directory becomes a cache
// of the files, filled from the store when a file is asked for and not
// there, and bounded to Config.CacheBytes by evicting the least recently
// served files (the store keeps them).

// layerFile is img's file as the artifact's one layer, annotated with
// what metald knows of it (raw SHA-256, virtual size, format chain), as
// both the image store and export push it.
func (s *Service) layerFile(img inventory.Image) oci.File {
	return oci.File{Path: s.Path(img), Size: img.Size, SHA256: img.SHA256, MediaType: oci.DiskMediaType(img.Chain),
		Annotations: map[string]string{
			ocidisk.AnnotationTitle:    img.File,
			ocidisk.AnnotationDiskType: img.Format,
			AnnotationRawSHA256:        img.RawSHA256,
			AnnotationVirtualSize:      strconv.FormatInt(img.VirtualSize, 10),
			AnnotationChain:            strings.Join(img.Chain, "/"),
		}}
}

// manifestAnnotations are the artifact manifest's annotations for img:
// its creation time and raw SHA-256.
func manifestAnnotations(img inventory.Image) map[string]string {
	return map[string]string{AnnotationCreated: img.CreatedAt.UTC().Format(time.RFC3339), AnnotationRawSHA256: img.RawSHA256}
}

// storePut pushes img's file to the store, if there is one, with what
// metald knows of it: raw SHA-256, virtual size, format chain and (man,
// when chunks are on) the chunk manifest's size and digest.
func (s *Service) storePut(ctx context.Context, img inventory.Image, man *imaging.Manifest) error {
	if s.cfg.ImageStore == nil {
		return nil
	}
	f := s.layerFile(img)
	if man != nil {
		f.Annotations[AnnotationChunkSize] = strconv.FormatInt(man.ChunkSize, 10)
		f.Annotations[AnnotationChunkManifest] = man.Digest()
	}
	d, err := s.cfg.ImageStore.Put(ctx, img.Name, f, manifestAnnotations(img))
	if err != nil {
		return fmt.Errorf("image store %s: %w", s.cfg.ImageStore, err)
	}
	if err := s.markSeen(img.Name); err != nil {
		s.log.Warn("image store: pushed image not recorded as seen", "image", img.Name, "err", err)
	}
	s.log.Info("image pushed to the store", "image", img.Name, "store", s.cfg.ImageStore.String(), "digest", d)
	return nil
}

// storeDelete removes name from the store, if there is one.
func (s *Service) storeDelete(ctx context.Context, name string) error {
	if s.cfg.ImageStore == nil {
		return nil
	}
	if err := s.cfg.ImageStore.Delete(ctx, name); err != nil && !errors.Is(err, oci.ErrNotFound) {
		return fmt.Errorf("image store %s: %w", s.cfg.ImageStore, err)
	}
	return nil
}

// openFile opens img's file, first fetching it from the store when it is
// not in the image directory, and marks it recently used.
func (s *Service) openFile(ctx context.Context, img inventory.Image) (*os.File, error) {
	p := s.Path(img)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) && s.cfg.ImageStore != nil {
		if err := s.fill(ctx, img); err != nil {
			return nil, err
		}
		f, err = os.Open(p)
	}
	if err != nil {
		return nil, err
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now) // the LRU's clock
	return f, nil
}

// fill fetches img's file from the store (once at a time per image),
// checked against its SHA-256, then evicts what exceeds the cache.
func (s *Service) fill(ctx context.Context, img inventory.Image) error {
	s.fillMu.Lock()
	if s.filling == nil {
		s.filling = map[string]*sync.Mutex{}
	}
	mu := s.filling[img.File]
	if mu == nil {
		mu = &sync.Mutex{}
		s.filling[img.File] = mu
	}
	s.fillMu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if _, err := os.Stat(s.Path(img)); err == nil {
		return nil // filled while we waited
	}
	start := time.Now()
	rc, err := s.cfg.ImageStore.Open(ctx, img.SHA256)
	if err != nil {
		return fmt.Errorf("image %s from the store %s: %w", img.Name, s.cfg.ImageStore, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(s.cfg.Dir, ".fill-"+img.Name+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	n, err := io.Copy(tmp, rc)  // the blob's digest is checked at its end
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != img.Size {
		err = fmt.Errorf("%d bytes, the image has %d", n, img.Size)
	}
	if err != nil {
		return fmt.Errorf("image %s from the store %s: %w", img.Name, s.cfg.ImageStore, err)
	}
	chunks, err := s.describe(ctx, img, tmp.Name())
	if err != nil {
		return fmt.Errorf("image %s from the store %s: %w", img.Name, s.cfg.ImageStore, err)
	}
	if err := os.Rename(tmp.Name(), s.Path(img)); err != nil {
		return err
	}
	s.log.Info("image fetched from the store", "image", img.Name, "bytes", n, "chunks", chunks, "took", time.Since(start).Round(time.Millisecond))
	s.evict(ctx, img.File)
	return nil
}

// describe decodes a file fetched from the store as an upload is: its raw
// SHA-256 must be the one recorded, and (unless chunks are off) its chunk
// manifest is written and its chunks stored, so that this metald's
// machines fetch chunks too.
func (s *Service) describe(ctx context.Context, img inventory.Image, path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := imaging.Open(f, s.cfg.Imaging)
	if err != nil {
		return 0, err
	}
	sink := imaging.ChunkSink(s.chunks.Put)
	if s.cfg.NoChunks {
		sink = nil
	}
	// The chunk manifest the ingesting metald recorded with the file: the
	// same chunk size, and the same manifest to be found.
	chunkSize, want := s.cfg.ChunkSize, ""
	if a, err := s.cfg.ImageStore.Annotations(ctx, img.Name); err == nil {
		if n, err := strconv.ParseInt(a[AnnotationChunkSize], 10, 64); err == nil && a[AnnotationChunkManifest] != "" {
			chunkSize, want = n, a[AnnotationChunkManifest]
		}
	} else {
		s.log.Warn("image store: no chunk manifest recorded with the file; describing it with this metald's chunk size", "image", img.Name, "err", err)
	}
	man, err := imaging.BuildManifest(ctx, st, chunkSize, sink)
	if err != nil {
		s.dropChunks(img.Name)
		return 0, err
	}
	if man.RawSHA256 != img.RawSHA256 {
		s.dropChunks(img.Name)
		return 0, fmt.Errorf("decodes to raw SHA-256 %s, the image has %s", man.RawSHA256, img.RawSHA256)
	}
	if man.Size != img.VirtualSize {
		s.dropChunks(img.Name)
		return 0, fmt.Errorf("decodes to a %d-byte disk, the image has virtual size %d", man.Size, img.VirtualSize)
	}
	if want != "" && man.Digest() != want {
		s.dropChunks(img.Name)
		return 0, fmt.Errorf("decodes to chunk manifest %s, the store records %s", man.Digest(), want)
	}
	if s.cfg.NoChunks {
		return 0, nil
	}
	if _, err := s.writeManifest(img.Name, man); err != nil {
		return 0, fmt.Errorf("manifest: %w", err)
	}
	return len(man.Chunks), nil
}

// evict removes the least recently used image files until those of the
// library fit in CacheBytes; keep (the file just filled) stays.
func (s *Service) evict(ctx context.Context, keep string) {
	if s.cfg.ImageStore == nil || s.cfg.CacheBytes <= 0 {
		return
	}
	imgs, err := s.store.ListImages(ctx)
	if err != nil {
		s.log.Warn("image cache: list", "err", err)
		return
	}
	type entry struct {
		path string
		size int64
		used time.Time
	}
	var files []entry
	var total int64
	for _, img := range imgs {
		st, err := os.Stat(s.Path(img))
		if err != nil {
			continue // not cached
		}
		total += st.Size()
		if filepath.Base(img.File) != keep {
			files = append(files, entry{s.Path(img), st.Size(), st.ModTime()})
		}
	}
	slices.SortFunc(files, func(a, b entry) int { return a.used.Compare(b.used) })
	for _, f := range files {
		if total <= s.cfg.CacheBytes {
			break
		}
		if err := os.Remove(f.path); err != nil {
			s.log.Warn("image cache: evict", "file", f.path, "err", err)
			continue
		}
		total -= f.size
		s.log.Info("image cache: evicted", "file", filepath.Base(f.path), "bytes", f.size)
	}
}
