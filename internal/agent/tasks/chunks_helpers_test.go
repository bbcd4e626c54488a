package tasks

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/imaging"
)

const testChunk = 64 << 10

// chunkedDisk is a raw disk of 40 chunks of 64 KiB and a partial one:
// data, whole zero chunks, zero runs inside data chunks, and chunks that
// repeat others.
func chunkedDisk() []byte {
	b := payload(40*testChunk + 20480)
	clear(b[4*testChunk : 8*testChunk])            // zero chunks 4–7
	clear(b[10*testChunk+4096 : 11*testChunk+512]) // zeros across a boundary
	copy(b[12*testChunk:13*testChunk], b[1*testChunk:2*testChunk])
	copy(b[13*testChunk:14*testChunk], b[1*testChunk:2*testChunk])
	clear(b[30*testChunk : 38*testChunk]) // zero chunks 30–37
	return b
}

// manifestOf builds raw's manifest with imaging.BuildManifest, the way
// metald does at upload, and each distinct chunk compressed with zstd.
func manifestOf(t *testing.T, raw []byte, chunkSize int64) (*imaging.Manifest, map[string][]byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := imaging.Open(f, imaging.Options{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	chunks := map[string][]byte{}
	m, err := imaging.BuildManifest(context.Background(), s, chunkSize, func(d string, data []byte) error {
		z := enc.EncodeAll(data, nil)
		mu.Lock()
		defer mu.Unlock()
		chunks[d] = z
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, chunks
}

// chunkServer serves a manifest at /manifest and its chunks at
// /chunks/<digest>, as metald does, counting requests per path. bad, when
// set, may choose another answer (a status, a corrupt body) for the nth
// request (from 1) of a chunk.
type chunkServer struct {
	*httptest.Server
	m        *imaging.Manifest
	manifest []byte
	chunks   map[string][]byte
	mu       sync.Mutex
	gets     map[string]int
	conns    atomic.Int32 // connections accepted
	bad      func(digest string, n int) (status int, body []byte)
}

// built caches manifestOf for the images the tests serve, by raw SHA-256.
var built sync.Map // string → *builtImage

type builtImage struct {
	m      *imaging.Manifest
	chunks map[string][]byte
}

func newChunkServer(t *testing.T, raw []byte) *chunkServer {
	t.Helper()
	key := sha(raw)
	bi, ok := built.Load(key)
	if !ok {
		m, chunks := manifestOf(t, raw, testChunk)
		bi, _ = built.LoadOrStore(key, &builtImage{m, chunks})
	}
	m, chunks := bi.(*builtImage).m, bi.(*builtImage).chunks
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	cs := &chunkServer{m: m, manifest: b, chunks: chunks, gets: map[string]int{}}
	cs.Server = httptest.NewUnstartedServer(cs.handler(t))
	cs.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			cs.conns.Add(1)
		}
	}
	cs.Start()
	t.Cleanup(cs.Close)
	return cs
}

func (cs *chunkServer) handler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.mu.Lock()
		cs.gets[r.URL.Path]++
		n, bad := cs.gets[r.URL.Path], cs.bad
		cs.mu.Unlock()
		switch d, ok := strings.CutPrefix(r.URL.Path, "/chunks/"); {
		case r.URL.Path == "/manifest":
			_, _ = w.Write(cs.manifest)
		case ok && cs.chunks[d] != nil:
			z, status := cs.chunks[d], http.StatusOK
			if bad != nil {
				if st, b := bad(d, n); st != 0 {
					z, status = b, st
				}
			}
			w.WriteHeader(status)
			_, _ = w.Write(z)
		case r.URL.Path == "/image":
			t.Errorf("the streaming url was fetched by a chunked provision")
			http.Error(w, "no", http.StatusGone)
		default:
			http.NotFound(w, r)
		}
	})
}

// chunkGets is how many chunk requests were made, the manifest's aside.
func (cs *chunkServer) chunkGets() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	n := 0
	for p, k := range cs.gets {
		if strings.HasPrefix(p, "/chunks/") {
			n += k
		}
	}
	return n
}

func (cs *chunkServer) getsOf(digest string) int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.gets["/chunks/"+digest]
}

// task is a chunked provision of cs's image.
func (cs *chunkServer) task(delta bool) agentapi.Task {
	return agentapi.Task{ID: "p", Kind: agentapi.TaskProvision, Token: "t", Image: &agentapi.Image{
		URL: cs.URL + "/image", SHA256: cs.m.RawSHA256, VirtualSize: cs.m.Size,
		ManifestURL: cs.URL + "/manifest", ManifestDigest: cs.m.Digest(), ChunkURL: cs.URL + "/chunks", Delta: delta,
	}}
}

// dataChunks counts the manifest's non-zero chunks.
func dataChunks(m *imaging.Manifest) int {
	n := 0
	for _, d := range m.Chunks {
		if d != "" {
			n++
		}
	}
	return n
}

// zstdOf compresses b, for corrupt answers.
func zstdOf(t *testing.T, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeAll(b, nil)
}

// fixture is the raw disk the tests serve, built once.
var fixture = sync.OnceValue(chunkedDisk)

// readDisk returns the first n bytes of the disk file.
func readDisk(t *testing.T, path string, n int) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < n {
		t.Fatalf("disk has %d bytes, want at least %d", len(b), n)
	}
	return b[:n]
}
