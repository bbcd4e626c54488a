package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/pkg/imaging"
)

// chunkStore keeps the chunks of every described image once, compressed
// with zstd and named by the SHA-256 of their raw bytes:
// <dir>/chunks/<first two hex digits>/<digest>.zst. Images that share
// content share chunks; a chunk outlives an image until no manifest
// names it.
type chunkStore struct {
	dir    string
	enc    *zstd.Encoder
	served atomic.Int64 // bytes of chunks sent by ChunkHandler
}

func newChunkStore(dir string) (*chunkStore, error) {
	if err := os.MkdirAll(filepath.Join(dir, "chunks"), 0o750); err != nil {
		return nil, fmt.Errorf("chunk dir: %w", err)
	}
	// EncodeAll is safe for concurrent use; one encoder serves every
	// hashing worker.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	return &chunkStore{dir: dir, enc: enc}, nil
}

func (c *chunkStore) path(digest string) string {
	return filepath.Join(c.dir, "chunks", digest[:2], digest+".zst")
}

// Put stores a chunk unless it is there already (imaging.ChunkSink).
func (c *chunkStore) Put(digest string, data []byte) error {
	p := c.path(digest)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".chunk-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	_, err = tmp.Write(c.enc.EncodeAll(data, make([]byte, 0, len(data)/2)))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("chunk %s: %w", digest, err)
	}
	return os.Rename(tmp.Name(), p)
}

// manifestPath is where an image's manifest lives, beside its file.
func (s *Service) manifestPath(name string) string {
	return filepath.Join(s.cfg.Dir, name+".manifest.json")
}

// writeManifest stores m for image name (atomically) and returns the
// digest of the bytes written, which is what machines are told to
// expect.
func (s *Service) writeManifest(name string, m *imaging.Manifest) (string, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	tmp := s.manifestPath(name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, s.manifestPath(name)); err != nil {
		return "", err
	}
	return m.Digest(), nil
}

// Manifest returns an image's chunk manifest; ErrNoManifest for an
// image stored before metald described images as chunks. With an image
// store, an image this metald has not cached yet is first fetched from
// the store and described (as its machines would fetch it anyway), so
// that its machines get chunks, not the file.
func (s *Service) Manifest(ctx context.Context, name string) (*imaging.Manifest, error) {
	m, err := s.localManifest(name)
	if !errors.Is(err, ErrNoManifest) || s.cfg.ImageStore == nil || s.cfg.NoChunks {
		return m, err
	}
	img, gerr := s.Image(ctx, name)
	if gerr != nil {
		return nil, err
	}
	if _, statErr := os.Stat(s.Path(img)); statErr == nil {
		return nil, err // here, and described without chunks
	}
	if ferr := s.fill(ctx, img); ferr != nil {
		return nil, fmt.Errorf("%w (%w)", err, ferr)
	}
	return s.localManifest(name)
}

// localManifest reads the manifest this metald holds for name.
func (s *Service) localManifest(name string) (*imaging.Manifest, error) {
	b, err := os.ReadFile(s.manifestPath(filepath.Base(name)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: image %s", ErrNoManifest, name)
	} else if err != nil {
		return nil, err
	}
	var m imaging.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", name, err)
	}
	return &m, m.Validate()
}

// ErrNoManifest: the image has no chunk manifest (machines stream it).
var ErrNoManifest = errors.New("no chunk manifest")

// gcChunks removes every chunk that no stored manifest names.
func (s *Service) gcChunks() (int, error) {
	keep := map[string]bool{}
	mans, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "*.manifest.json"))
	for _, p := range mans {
		m, err := s.localManifest(strings.TrimSuffix(filepath.Base(p), ".manifest.json"))
		if err != nil {
			return 0, fmt.Errorf("chunk gc: %w", err) // keep everything rather than guess
		}
		for _, d := range m.Chunks {
			keep[d] = true
		}
	}
	files, _ := filepath.Glob(filepath.Join(s.chunks.dir, "chunks", "*", "*.zst"))
	n := 0
	for _, f := range files {
		if !keep[strings.TrimSuffix(filepath.Base(f), ".zst")] && os.Remove(f) == nil {
			n++
		}
	}
	return n, nil
}

// ChunkHandler serves GET|HEAD /chunks/<digest>: a chunk's zstd bytes,
// immutable (its name is its content's digest), with Range.
func (s *Service) ChunkHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		d := strings.TrimPrefix(r.URL.Path, "/chunks/")
		if !imaging.IsDigest(d) {
			http.Error(w, "chunk name is not a lower-case hex SHA-256", http.StatusBadRequest)
			return
		}
		f, err := os.Open(s.chunks.path(d))
		if err != nil {
			http.Error(w, "no chunk "+d, http.StatusNotFound)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			http.Error(w, "chunk unreadable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/zstd")
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("ETag", `"`+d+`"`)
		http.ServeContent(countingWriter{w, &s.chunks.served}, r, "", st.ModTime(), f)
	})
}

// ChunkBytesServed is how many bytes of chunks ChunkHandler has sent.
func (s *Service) ChunkBytesServed() int64 { return s.chunks.served.Load() }

// ChunkCollector exposes ChunkBytesServed as
// metald_chunk_bytes_served_total.
func (s *Service) ChunkCollector() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "metald_chunk_bytes_served_total",
		Help: "Bytes of image chunks metald sent (GET /chunks/); with peer-to-peer sharing, well under the machines × the image."},
		func() float64 { return float64(s.chunks.served.Load()) })
}

// countingWriter counts the bytes of a response body.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}
