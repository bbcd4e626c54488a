package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/metal-iaas/metal/pkg/imaging"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/test/testenv"
)

func newLibrary(t *testing.T) *Service {
	t.Helper()
	store, err := inventory.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s, err := New(Config{Dir: t.TempDir(), ChunkSize: 64 << 10}, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// disk writes a raw disk: data, zeros, a repeat of the first chunk.
func disk(t *testing.T, path string, variant byte) []byte {
	t.Helper()
	b := make([]byte, 1<<20+512)
	for i := range 64 << 10 {
		b[i] = byte(i*7) ^ 0x5a
	}
	copy(b[5*64<<10:], b[:64<<10]) // shared within the image
	copy(b[9*64<<10:], bytes.Repeat([]byte("metal"), 2000))
	b[len(b)-1] = variant // the last chunk differs between variants
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func get(t *testing.T, h http.Handler, path string) (int, http.Header, []byte) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	return w.Code, w.Header(), w.Body.Bytes()
}

// TestUploadDescribesChunks: an upload (qcow2 from qemu-img) is stored
// with a chunk manifest served at /images/<name>/manifest; every
// non-zero chunk is served once at /chunks/<digest>, zstd-compressed,
// immutable; chunks rebuild the raw disk; deleting an image removes its
// manifest and the chunks no other image names.
func TestUploadDescribesChunks(t *testing.T) {
	_, err := exec.LookPath("qemu-img")
	testenv.Require(t, err == nil, "qemu-img (qemu-utils) is needed to make the qcow2")
	s := newLibrary(t)
	ctx := context.Background()
	dir := t.TempDir()
	want := disk(t, filepath.Join(dir, "a.raw"), 1)
	disk(t, filepath.Join(dir, "b.raw"), 2)
	for _, n := range []string{"a", "b"} {
		if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", filepath.Join(dir, n+".raw"), filepath.Join(dir, n+".qcow2")).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img: %v %s", err, out)
		}
		f, err := os.Open(filepath.Join(dir, n+".qcow2"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := s.Ingest(ctx, n, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if n == "a" {
			sum := sha256.Sum256(want)
			if img.RawSHA256 != hex.EncodeToString(sum[:]) || img.VirtualSize != int64(len(want)) {
				t.Fatalf("image %+v", img)
			}
		}
	}
	code, hdr, body := get(t, s, "/images/a/manifest")
	if code != 200 {
		t.Fatalf("manifest: %d %s", code, body)
	}
	var m imaging.Manifest
	if err := json.Unmarshal(body, &m); err != nil || m.Validate() != nil {
		t.Fatalf("manifest %s: %v", body, err)
	}
	sum := sha256.Sum256(body)
	if hdr.Get("ETag") != `"`+hex.EncodeToString(sum[:])+`"` || m.Digest() != hex.EncodeToString(sum[:]) {
		t.Fatalf("manifest digest: etag %s, Digest() %s, served bytes %x", hdr.Get("ETag"), m.Digest(), sum)
	}
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	got := make([]byte, m.Size)
	chunks := s.ChunkHandler()
	for i, d := range m.Chunks {
		if d == "" {
			continue
		}
		code, hdr, z := get(t, chunks, "/chunks/"+d)
		if code != 200 || hdr.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Fatalf("chunk %d: %d %v", i, code, hdr)
		}
		data, err := dec.DecodeAll(z, nil)
		if err != nil {
			t.Fatal(err)
		}
		cs := sha256.Sum256(data)
		if hex.EncodeToString(cs[:]) != d {
			t.Fatalf("chunk %d does not hash to its name", i)
		}
		off, _ := m.ChunkRange(i)
		copy(got[off:], data)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("chunks do not rebuild the disk")
	}
	if m.Chunks[0] != m.Chunks[5] || m.Chunks[1] != "" {
		t.Fatalf("chunks %q", m.Chunks)
	}
	for path, want := range map[string]int{"/chunks/zz": 400, "/chunks/" + string(bytes.Repeat([]byte("0"), 64)): 404} {
		if code, _, _ := get(t, chunks, path); code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
	}
	if code, _, _ := get(t, s, "/images/nope/manifest"); code != 404 {
		t.Errorf("manifest of no image: %d", code)
	}

	// b shares every chunk of a but the last: deleting a keeps those.
	last := m.Chunks[len(m.Chunks)-1]
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, s, "/images/a/manifest"); code != 404 {
		t.Errorf("manifest after delete: %d", code)
	}
	if code, _, _ := get(t, chunks, "/chunks/"+last); code != 404 {
		t.Errorf("a's own chunk after delete: %d", code)
	}
	if code, _, _ := get(t, chunks, "/chunks/"+m.Chunks[0]); code != 200 {
		t.Errorf("shared chunk after delete: %d", code)
	}
	if err := s.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "chunks", "*", "*")); len(left) != 0 {
		t.Errorf("chunks left with no image: %v", left)
	}
}

// TestRefusedUploadLeavesNoChunks: a qcow2 cut short is refused after
// some of its chunks were stored; they are removed with it.
func TestRefusedUploadLeavesNoChunks(t *testing.T) {
	_, err := exec.LookPath("qemu-img")
	testenv.Require(t, err == nil, "qemu-img (qemu-utils) is needed to make the qcow2")
	s := newLibrary(t)
	dir := t.TempDir()
	disk(t, filepath.Join(dir, "d.raw"), 1)
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096",
		filepath.Join(dir, "d.raw"), filepath.Join(dir, "d.qcow2")).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "d.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(context.Background(), "bad", bytes.NewReader(b[:len(b)-20<<10])); err == nil {
		t.Fatal("truncated image accepted")
	}
	if left, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "chunks", "*", "*")); len(left) != 0 {
		t.Errorf("chunks left by a refused upload: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "*")); len(left) != 1 { // chunks/
		t.Errorf("files left by a refused upload: %v", left)
	}
}
