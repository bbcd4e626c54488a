// Package images keeps metald's image library: uploads are inspected by
// pkg/imaging as they arrive (a hostile or corrupt image is refused and
// never stored), stored in the data dir with their raw SHA-256 and virtual
// size, and served to machines at /images/<name> with HTTP range support.
package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/metal-iaas/metal/internal/oci"
	"github.com/metal-iaas/metal/pkg/imaging"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// Store is what the library needs from the inventory.
type Store interface {
	PutImage(ctx context.Context, img inventory.Image) error
	GetImage(ctx context.Context, name string) (inventory.Image, error)
	ListImages(ctx context.Context) ([]inventory.Image, error)
	DeleteImage(ctx context.Context, name string) error
	AppendEvent(ctx context.Context, e inventory.Event) (inventory.Event, error)
}

// Config bounds what the library accepts.
type Config struct {
	// Dir holds the image files.
	Dir string
	// Imaging is handed to imaging.Open for every upload.
	Imaging imaging.Options
	// MaxUpload bounds an upload's size in bytes; zero means 1 TiB.
	MaxUpload int64
	// ChunkSize of the manifests (imaging.DefaultChunkSize when zero).
	ChunkSize int64
	// NoChunks stores uploads without a chunk manifest: machines then
	// stream the image file (metald serve --image-chunks=false).
	NoChunks bool
	// OCI is the base of every import's and export's registry options
	// (auth file keychain, transport); credentials and plain HTTP come
	// with each request.
	OCI oci.Options
	// ImageStore, when set, holds every image's file for all the metalds
	// that share it; Dir is then a cache of CacheBytes (0: unbounded),
	// least recently served files evicted first (imagestore.go).
	ImageStore *oci.Store
	CacheBytes int64
	// SyncInterval is how often Run reads the library back from the
	// image store (DefaultSyncInterval when zero); SyncMinInterval how
	// often a lookup that misses may (1 s when zero). sync.go.
	SyncInterval    time.Duration
	SyncMinInterval time.Duration
}

// Service is the image library.
type Service struct {
	cfg    Config
	store  Store
	log    *slog.Logger
	chunks *chunkStore

	fillMu  sync.Mutex
	filling map[string]*sync.Mutex // per file being fetched from the store

	sync *syncState
}

// New creates the image directory if needed.
func New(cfg Config, store Store, log *slog.Logger) (*Service, error) {
	if cfg.MaxUpload == 0 {
		cfg.MaxUpload = 1 << 40
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = imaging.DefaultChunkSize
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("image dir: %w", err)
	}
	cs, err := newChunkStore(cfg.Dir)
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, store: store, log: log, chunks: cs, sync: newSyncState()}, nil
}

// Ingest reads an image from r, inspects and verifies it end to end, and
// stores it as name. Nothing is kept unless the whole image decodes.
func (s *Service) Ingest(ctx context.Context, name string, r io.Reader) (inventory.Image, error) {
	if err := inventory.ValidateName("image name", name); err != nil {
		return inventory.Image{}, err
	}
	tmp, err := os.CreateTemp(s.cfg.Dir, ".upload-"+name+"-*")
	if err != nil {
		return inventory.Image{}, fmt.Errorf("image dir: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // a no-op after the rename
	}()
	fileSum := sha256.New()
	counted := &countWriter{}
	in := io.TeeReader(io.LimitReader(r, s.cfg.MaxUpload+1), io.MultiWriter(tmp, fileSum, counted))

	st, err := imaging.Open(in, s.cfg.Imaging)
	if err != nil {
		return inventory.Image{}, fmt.Errorf("%w: %v", inventory.ErrInvalid, err)
	}
	// Decoded once: the chunk manifest (chunks stored as they pass) and
	// the raw SHA-256 together.
	sink := imaging.ChunkSink(s.chunks.Put)
	if s.cfg.NoChunks {
		sink = nil
	}
	man, err := imaging.BuildManifest(ctx, st, s.cfg.ChunkSize, sink)
	if err != nil {
		s.dropChunks(name)
		return inventory.Image{}, fmt.Errorf("%w: %v", inventory.ErrInvalid, err)
	}
	raw, size := man.RawSHA256, man.Size
	// Keep whatever follows the last extent (padding, an OVA's manifest).
	if _, err := io.Copy(io.Discard, in); err != nil {
		s.dropChunks(name)
		return inventory.Image{}, fmt.Errorf("upload: %w", err)
	}
	if counted.n > s.cfg.MaxUpload {
		s.dropChunks(name)
		return inventory.Image{}, fmt.Errorf("%w: upload larger than the %d-byte limit", inventory.ErrInvalid, s.cfg.MaxUpload)
	}
	info := st.Info()
	if err := tmp.Sync(); err != nil {
		return inventory.Image{}, err
	}
	file := name + "." + info.Format
	defer s.hold(name)() // the file, the push and the record: a sync leaves them to us (sync.go)
	if err := os.Rename(tmp.Name(), filepath.Join(s.cfg.Dir, file)); err != nil {
		return inventory.Image{}, err
	}
	manDigest := "(none)"
	if s.cfg.NoChunks {
		// A replaced image must not keep its predecessor's manifest.
		if err := os.Remove(s.manifestPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return inventory.Image{}, fmt.Errorf("manifest: %w", err)
		}
	} else if manDigest, err = s.writeManifest(name, man); err != nil {
		return inventory.Image{}, fmt.Errorf("manifest: %w", err)
	}
	img := inventory.Image{Name: name, File: file, Format: info.Format, Chain: info.Chain, Size: counted.n,
		VirtualSize: size, SHA256: hex.EncodeToString(fileSum.Sum(nil)), RawSHA256: raw, CreatedAt: time.Now()}
	described := man
	if s.cfg.NoChunks {
		described = nil
	}
	if err := s.storePut(ctx, img, described); err != nil {
		os.Remove(filepath.Join(s.cfg.Dir, file))
		return inventory.Image{}, err
	}
	if err := s.store.PutImage(ctx, img); err != nil {
		os.Remove(filepath.Join(s.cfg.Dir, file))
		return inventory.Image{}, err
	}
	s.log.Info("image stored", "image", name, "format", info.Format, "chain", strings.Join(info.Chain, "/"),
		"size", counted.n, "virtual_size", size, "raw_sha256", raw, "manifest", manDigest,
		"chunks", len(man.Chunks), "data_bytes", man.DataBytes())
	return img, nil
}

// dropChunks removes the chunks a refused upload stored (those no
// manifest names).
func (s *Service) dropChunks(name string) {
	if _, err := s.gcChunks(); err != nil {
		s.log.Warn("chunks of a refused upload kept", "image", name, "err", err)
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(b []byte) (int, error) { c.n += int64(len(b)); return len(b), nil }

// Path returns the file of a stored image.
func (s *Service) Path(img inventory.Image) string {
	return filepath.Join(s.cfg.Dir, filepath.Base(img.File))
}

// Delete forgets an image and removes its file.
func (s *Service) Delete(ctx context.Context, name string) error {
	img, err := s.Image(ctx, name)
	if err != nil {
		return err
	}
	defer s.hold(name)() // a sync leaves it to us (sync.go)
	if err := s.storeDelete(ctx, name); err != nil {
		return err
	}
	// Another metald's sync (one inventory) may have removed the record
	// once the tag was gone.
	if err := s.store.DeleteImage(ctx, name); err != nil && (s.cfg.ImageStore == nil || !errors.Is(err, inventory.ErrNotFound)) {
		return err
	}
	if err := os.Remove(s.Path(img)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("image file not removed", "image", name, "err", err)
	}
	if err := os.Remove(s.manifestPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("image manifest not removed", "image", name, "err", err)
	}
	if n, err := s.gcChunks(); err != nil {
		s.log.Warn("chunk gc", "err", err)
	} else if n > 0 {
		s.log.Info("chunks removed", "image", name, "chunks", n)
	}
	return nil
}

// ServeHTTP answers GET and HEAD /images/<name> with the stored file,
// honouring Range and If-Range (http.ServeContent; sendfile when the
// writer allows it), and /images/<name>/manifest with its chunk
// manifest.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/images/")
	if base, ok := strings.CutSuffix(name, "/manifest"); ok {
		s.serveManifest(w, r, base)
		return
	}
	img, err := s.Image(r.Context(), name)
	if err != nil {
		http.Error(w, "no image "+name, http.StatusNotFound)
		return
	}
	f, err := s.openFile(r.Context(), img)
	if err != nil {
		s.log.Error("image file missing", "image", name, "err", err)
		http.Error(w, "image file missing", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+img.SHA256+`"`)
	w.Header().Set("X-Metal-Raw-SHA256", img.RawSHA256)
	w.Header().Set("X-Metal-Virtual-Size", fmt.Sprint(img.VirtualSize))
	http.ServeContent(w, r, img.File, img.CreatedAt, f)
}

// serveManifest answers /images/<name>/manifest with the bytes whose
// digest tasks carry.
func (s *Service) serveManifest(w http.ResponseWriter, r *http.Request, name string) {
	if _, err := s.Image(r.Context(), name); err != nil {
		http.Error(w, "no image "+name, http.StatusNotFound)
		return
	}
	m, err := s.Manifest(r.Context(), name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	b, _ := json.Marshal(m)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", `"`+m.Digest()+`"`)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}
