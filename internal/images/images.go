// Package images keeps metald's image library: uploads are inspected by
// pkg/imaging as they arrive (a hostile or corrupt image is refused and
// never stored), stored in the data dir with their raw SHA-256 and virtual
// size, and served to machines at /images/<name> with HTTP range support.
package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/metal-iaas/metal/pkg/imaging"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// Store is what the library needs from the inventory.
type Store interface {
	PutImage(ctx context.Context, img inventory.Image) error
	GetImage(ctx context.Context, name string) (inventory.Image, error)
	ListImages(ctx context.Context) ([]inventory.Image, error)
	DeleteImage(ctx context.Context, name string) error
}

// Config bounds what the library accepts.
type Config struct {
	// Dir holds the image files.
	Dir string
	// Imaging is handed to imaging.Open for every upload.
	Imaging imaging.Options
	// MaxUpload bounds an upload's size in bytes; zero means 1 TiB.
	MaxUpload int64
}

// Service is the image library.
type Service struct {
	cfg   Config
	store Store
	log   *slog.Logger
}

// New creates the image directory if needed.
func New(cfg Config, store Store, log *slog.Logger) (*Service, error) {
	if cfg.MaxUpload == 0 {
		cfg.MaxUpload = 1 << 40
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("image dir: %w", err)
	}
	return &Service{cfg: cfg, store: store, log: log}, nil
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
	raw, size, err := Digest(ctx, st)
	if err != nil {
		return inventory.Image{}, fmt.Errorf("%w: %v", inventory.ErrInvalid, err)
	}
	// Keep whatever follows the last extent (padding, an OVA's manifest).
	if _, err := io.Copy(io.Discard, in); err != nil {
		return inventory.Image{}, fmt.Errorf("upload: %w", err)
	}
	if counted.n > s.cfg.MaxUpload {
		return inventory.Image{}, fmt.Errorf("%w: upload larger than the %d-byte limit", inventory.ErrInvalid, s.cfg.MaxUpload)
	}
	info := st.Info()
	if err := tmp.Sync(); err != nil {
		return inventory.Image{}, err
	}
	file := name + "." + info.Format
	if err := os.Rename(tmp.Name(), filepath.Join(s.cfg.Dir, file)); err != nil {
		return inventory.Image{}, err
	}
	img := inventory.Image{Name: name, File: file, Format: info.Format, Chain: info.Chain, Size: counted.n,
		VirtualSize: size, SHA256: hex.EncodeToString(fileSum.Sum(nil)), RawSHA256: raw, CreatedAt: time.Now()}
	if err := s.store.PutImage(ctx, img); err != nil {
		os.Remove(filepath.Join(s.cfg.Dir, file))
		return inventory.Image{}, err
	}
	s.log.Info("image stored", "image", name, "format", info.Format, "chain", strings.Join(info.Chain, "/"),
		"size", counted.n, "virtual_size", size, "raw_sha256", raw)
	return img, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(b []byte) (int, error) { c.n += int64(len(b)); return len(b), nil }

// Digest reads a stream to its end and returns the SHA-256 of the raw disk
// it describes (holes and zero ranges hashed as zeros) and its size.
func Digest(ctx context.Context, st imaging.Stream) (string, int64, error) {
	h := sha256.New()
	var pos int64
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		e, err := st.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", 0, err
		}
		if e.Offset < pos {
			return "", 0, fmt.Errorf("image stream went backwards at offset %d", e.Offset)
		}
		hashZeros(h, e.Offset-pos)
		if e.Kind == imaging.KindData {
			h.Write(e.Data)
		} else {
			hashZeros(h, e.Length)
		}
		pos = e.Offset + e.Length
	}
	// Raw input from a pipe learns its size only at the end.
	size := st.Info().VirtualSize
	if size < 0 {
		size = pos
	}
	if pos > size {
		return "", 0, fmt.Errorf("image stream ran past its virtual size (%d > %d)", pos, size)
	}
	hashZeros(h, size-pos)
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

var zeroBlock = make([]byte, 1<<20)

func hashZeros(h hash.Hash, n int64) {
	for n > 0 {
		k := min(n, int64(len(zeroBlock)))
		h.Write(zeroBlock[:k])
		n -= k
	}
}

// Path returns the file of a stored image.
func (s *Service) Path(img inventory.Image) string {
	return filepath.Join(s.cfg.Dir, filepath.Base(img.File))
}

// Delete forgets an image and removes its file.
func (s *Service) Delete(ctx context.Context, name string) error {
	img, err := s.store.GetImage(ctx, name)
	if err != nil {
		return err
	}
	if err := s.store.DeleteImage(ctx, name); err != nil {
		return err
	}
	if err := os.Remove(s.Path(img)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("image file not removed", "image", name, "err", err)
	}
	return nil
}

// ServeHTTP answers GET and HEAD /images/<name> with the stored file,
// honouring Range and If-Range (http.ServeContent; sendfile when the
// writer allows it).
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/images/")
	img, err := s.store.GetImage(r.Context(), name)
	if err != nil {
		http.Error(w, "no image "+name, http.StatusNotFound)
		return
	}
	f, err := os.Open(s.Path(img))
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
