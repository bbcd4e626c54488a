package imaging

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// manifestOf decodes img and builds its manifest, keeping every chunk.
func manifestOf(t *testing.T, img string, chunk int64, opts Options) (*Manifest, map[string][]byte) {
	return manifestFrom(t, img, chunk, opts, false)
}

// manifestFrom is manifestOf, through a pipe (no Seek, no Stat) when
// pipe is set: raw input then learns its size only at the end.
func manifestFrom(t *testing.T, img string, chunk int64, opts Options, pipe bool) (*Manifest, map[string][]byte) {
	t.Helper()
	s, err := Open(openInput(t, img, pipe), opts)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	store := map[string][]byte{}
	m, err := BuildManifest(context.Background(), s, chunk, func(d string, data []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := store[d]; dup {
			t.Errorf("chunk %s handed to the sink twice", d)
		}
		store[d] = bytes.Clone(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m, store
}

// TestManifestMatchesQemuImg: for every corpus format, the manifest
// describes exactly qemu-img's raw conversion — each chunk's digest is
// the SHA-256 of that range of qemu-img's output, zero chunks are the
// all-zero ranges, the disk reassembled from the chunks is qemu-img's,
// and RawSHA256 is its sha256sum.
func TestManifestMatchesQemuImg(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	testDisk(t, raw, testDiskSize)
	for _, c := range corpusCases {
		t.Run(c.name, func(t *testing.T) {
			img := buildCase(t, dir, raw, c)
			ref := filepath.Join(t.TempDir(), "ref.raw")
			args := []string{"convert"}
			if c.refFmt != "" {
				args = append(args, "-f", c.refFmt)
			}
			run(t, "qemu-img", append(args, "-O", "raw", img, ref)...)
			want, err := os.ReadFile(ref)
			if err != nil {
				t.Fatal(err)
			}
			for _, chunk := range []int64{64 << 10, 1 << 20, DefaultChunkSize} {
				m, store := manifestOf(t, img, chunk, c.open)
				sum := sha256.Sum256(want)
				if m.Size != int64(len(want)) || m.RawSHA256 != hex.EncodeToString(sum[:]) {
					t.Fatalf("chunk %d: size %d raw %s, qemu-img %d bytes %x", chunk, m.Size, m.RawSHA256, len(want), sum)
				}
				got := make([]byte, m.Size)
				for i, d := range m.Chunks {
					off, n := m.ChunkRange(i)
					part := want[off : off+n]
					if d == "" {
						if !allZero(part) {
							t.Fatalf("chunk %d/%d called zero but holds data", i, chunk)
						}
						continue
					}
					ps := sha256.Sum256(part)
					if d != hex.EncodeToString(ps[:]) {
						t.Fatalf("chunk %d/%d digest %s, qemu-img's range %x", i, chunk, d, ps)
					}
					copy(got[off:], store[d])
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("chunk %d: disk reassembled from the chunks differs from qemu-img's", chunk)
				}
				// The same chunks from Write's hasher stage (as convert
				// writes a disk), with and without the raw hash.
				for _, raw := range []bool{false, true} {
					back := writeManifest(t, img, chunk, c.open, raw)
					if back.ContentDigest() != m.ContentDigest() || (back.Digest() == m.Digest()) != raw {
						t.Fatalf("chunk %d, raw hash %v: Write's manifest %s (raw %q), BuildManifest %s", chunk, raw, back.ContentDigest(), back.RawSHA256, m.ContentDigest())
					}
				}
			}
		})
	}
}

// TestManifestDedupAndZeros: repeated content is stored once, zero data
// (written as data, not as a hole) makes a zero chunk, and the manifest
// digest changes with any chunk.
func TestManifestDedupAndZeros(t *testing.T) {
	const chunk = 64 << 10
	disk := make([]byte, 10*chunk+100)
	pattern := bytes.Repeat([]byte("metal"), chunk/5+1)[:chunk]
	copy(disk[0:], pattern)
	copy(disk[3*chunk:], pattern) // same chunk again
	disk[7*chunk+5] = 1
	disk[len(disk)-1] = 9 // the short last chunk
	path := filepath.Join(t.TempDir(), "d.raw")
	if err := os.WriteFile(path, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	m, store := manifestOf(t, path, chunk, Options{Format: "raw"})
	if len(m.Chunks) != 11 || len(store) != 3 || m.Chunks[0] != m.Chunks[3] || m.Chunks[1] != "" || m.Chunks[10] == "" {
		t.Fatalf("chunks %q, %d stored", m.Chunks, len(store))
	}
	// Raw from a pipe: the size comes at the end, the manifest is the same.
	if mp, _ := manifestFrom(t, path, chunk, Options{Format: "raw"}, true); mp.Digest() != m.Digest() || mp.Size != int64(len(disk)) {
		t.Fatalf("through a pipe: size %d chunks %q", mp.Size, mp.Chunks)
	}
	if m.DataBytes() != 3*chunk+100 {
		t.Fatalf("data bytes %d", m.DataBytes())
	}
	d := m.Digest()
	m.Chunks[1] = m.Chunks[0]
	if m.Digest() == d {
		t.Fatal("manifest digest does not cover the chunks")
	}
}

// TestManifestSinkErrorStops: a failing sink ends the build with its
// error.
func TestManifestSinkErrorStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.raw")
	testDisk(t, path, testDiskSize)
	s, err := Open(openInput(t, path, false), Options{Format: "raw"})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	if _, err := BuildManifest(context.Background(), s, 1<<20, func(string, []byte) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
}

func TestManifestValidate(t *testing.T) {
	ok := Manifest{Version: 1, ChunkSize: 4096, Size: 8193, Chunks: []string{"", "", ""}}
	for name, m := range map[string]Manifest{
		"version":     {Version: 2, ChunkSize: 4096, Size: 0},
		"chunk size":  {Version: 1, ChunkSize: 1000, Size: 0},
		"count":       {Version: 1, ChunkSize: 4096, Size: 8193, Chunks: []string{""}},
		"digest form": {Version: 1, ChunkSize: 4096, Size: 1, Chunks: []string{"XYZ"}},
	} {
		if err := m.Validate(); !errors.Is(err, ErrManifest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}

// writeManifest writes img to a file with Write and returns the chunk
// manifest its hasher stage made.
func writeManifest(t *testing.T, img string, chunk int64, opts Options, raw bool) *Manifest {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Open(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "out.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	res, err := Write(context.Background(), s, out, WriteOptions{ChunkSize: chunk, SkipHash: !raw})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest == nil || (res.Manifest.RawSHA256 != "") != raw {
		t.Fatalf("Write with ChunkSize %d: manifest %+v", chunk, res.Manifest)
	}
	return res.Manifest
}
