package imaging

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// ManifestVersion is the chunk manifest format's version.
const ManifestVersion = 1

// DefaultChunkSize is the manifest's default chunk: large enough that a
// 10 GiB disk has 2,560 of them, small enough to spread over peers.
const DefaultChunkSize = 4 << 20

// Manifest describes a raw disk as fixed-size chunks: chunk i covers
// bytes [i·ChunkSize, min((i+1)·ChunkSize, Size)). A chunk that reads as
// zeros has no digest and is never transferred (a writer zeroes or
// leaves a hole); every other chunk is named by the SHA-256 of its raw
// bytes, so it can come from anywhere and be verified on arrival.
type Manifest struct {
	Version   int    `json:"version"`
	ChunkSize int64  `json:"chunk_size"`
	Size      int64  `json:"size"`
	RawSHA256 string `json:"raw_sha256"`
	// Chunks holds one entry per chunk: a lower-case hex SHA-256, or ""
	// for a zero chunk.
	Chunks []string `json:"chunks"`
}

// ContentDigest is the SHA-256 of the manifest without its raw SHA-256:
// it names the disk's content by its chunks alone, so that a manifest
// read back from a written disk (ManifestOfRaw, which skips the costly
// whole-disk hash) can be compared with one metald built at upload.
func (m *Manifest) ContentDigest() string {
	c := *m
	c.RawSHA256 = ""
	return c.Digest()
}

// ErrManifest is wrapped by every manifest validation error.
var ErrManifest = errors.New("invalid chunk manifest")

// Digest is the manifest's own SHA-256, over its canonical JSON.
func (m *Manifest) Digest() string {
	b, _ := json.Marshal(m)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Validate checks the manifest's shape: version, chunk size (a multiple
// of 4 KiB, as O_DIRECT writes want), the chunk count for Size, and the
// digests' form.
func (m *Manifest) Validate() error {
	switch {
	case m.Version != ManifestVersion:
		return fmt.Errorf("%w: version %d, want %d", ErrManifest, m.Version, ManifestVersion)
	case m.ChunkSize < 4096 || m.ChunkSize%4096 != 0 || m.ChunkSize > 1<<30:
		return fmt.Errorf("%w: chunk size %d is not a multiple of 4 KiB up to 1 GiB", ErrManifest, m.ChunkSize)
	case m.Size < 0:
		return fmt.Errorf("%w: size %d", ErrManifest, m.Size)
	case int64(len(m.Chunks)) != (m.Size+m.ChunkSize-1)/m.ChunkSize:
		return fmt.Errorf("%w: %d chunks for %d bytes of %d-byte chunks", ErrManifest, len(m.Chunks), m.Size, m.ChunkSize)
	}
	for i, d := range m.Chunks {
		if d != "" && !IsDigest(d) {
			return fmt.Errorf("%w: chunk %d digest %q", ErrManifest, i, d)
		}
	}
	return nil
}

// ChunkRange is chunk i's offset and length in the raw disk.
func (m *Manifest) ChunkRange(i int) (off, n int64) {
	off = int64(i) * m.ChunkSize
	return off, min(m.ChunkSize, m.Size-off)
}

// DataBytes is how many bytes of the disk are in non-zero chunks.
func (m *Manifest) DataBytes() int64 {
	var n int64
	for i, d := range m.Chunks {
		if d != "" {
			_, l := m.ChunkRange(i)
			n += l
		}
	}
	return n
}

// IsDigest reports whether s is a lower-case hex SHA-256, the name of a
// chunk.
func IsDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ChunkSink receives each distinct non-zero chunk once, from several
// goroutines at once; data is valid only during the call.
type ChunkSink func(digest string, data []byte) error

// BuildManifest decodes s once into chunks of chunkSize (0: the
// default): zero chunks recognised from holes, zero extents and
// all-zero data; the others hashed on every core and handed to sink
// (which may be nil) once per distinct digest. The raw SHA-256 of the
// whole disk (holes as zeros, what `sha256sum` of `qemu-img convert -O
// raw` prints) is computed alongside.
func BuildManifest(ctx context.Context, s Stream, chunkSize int64, sink ChunkSink) (*Manifest, error) {
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	// Raw input from a pipe learns its size only at the end (-1 until
	// then): the chunk count follows the stream.
	m := &Manifest{Version: ManifestVersion, ChunkSize: chunkSize, Size: s.Info().VirtualSize}
	if chunkSize < 4096 || chunkSize%4096 != 0 || chunkSize > 1<<30 {
		return nil, fmt.Errorf("%w: chunk size %d is not a multiple of 4 KiB up to 1 GiB", ErrManifest, chunkSize)
	}
	b := &chunkBuilder{m: m, sink: sink, raw: sha256.New(), seen: map[string]bool{}, digests: map[int]string{},
		work: make(chan chunkJob, runtime.GOMAXPROCS(0)), pool: sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	b.start(ctx, cancel)
	err := b.fill(ctx, s)
	close(b.work)
	b.wg.Wait()
	if err == nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		return nil, err
	}
	m.RawSHA256 = hex.EncodeToString(b.raw.Sum(nil))
	m.Chunks = make([]string, (m.Size+chunkSize-1)/chunkSize)
	for i, d := range b.digests {
		m.Chunks[i] = d
	}
	return m, m.Validate()
}

type chunkJob struct {
	index int
	buf   *[]byte
	n     int64
}

// chunkBuilder assembles chunks in order (and the raw digest) on the
// caller's goroutine and hashes them on workers.
type chunkBuilder struct {
	m    *Manifest
	sink ChunkSink
	raw  interface {
		io.Writer
		Sum([]byte) []byte
	}
	work    chan chunkJob
	pool    sync.Pool
	wg      sync.WaitGroup
	mu      sync.Mutex
	seen    map[string]bool
	digests map[int]string // chunk index → digest, for non-zero chunks
}

func (b *chunkBuilder) start(ctx context.Context, cancel context.CancelCauseFunc) {
	for range cap(b.work) {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for j := range b.work {
				if ctx.Err() == nil {
					if err := b.hash(j); err != nil {
						cancel(err)
					}
				}
				b.pool.Put(j.buf)
			}
		}()
	}
}

// hash names chunk j (zero, or its digest) and hands new data to the sink.
func (b *chunkBuilder) hash(j chunkJob) error {
	data := (*j.buf)[:j.n]
	if allZero(data) {
		return nil
	}
	sum := sha256.Sum256(data)
	d := hex.EncodeToString(sum[:])
	b.mu.Lock()
	b.digests[j.index] = d
	fresh := !b.seen[d]
	b.seen[d] = true
	b.mu.Unlock()
	if fresh && b.sink != nil {
		return b.sink(d, data)
	}
	return nil
}

// fill reads the stream into chunk buffers; a chunk that only holes and
// zero extents touched is never copied or queued.
func (b *chunkBuilder) fill(ctx context.Context, s Stream) error {
	cs, size := b.m.ChunkSize, b.m.Size
	if size < 0 {
		size = 1<<63 - 1 // learnt at the end
	}
	var cur *[]byte
	idx := -1
	end := size   // the disk's end, for the length of the last chunk
	var pos int64 // raw bytes hashed so far
	zeros := make([]byte, 64<<10)
	flush := func() error {
		if cur == nil {
			return nil
		}
		n := min(cs, end-int64(idx)*cs)
		select {
		case b.work <- chunkJob{index: idx, buf: cur, n: n}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		cur = nil
		return nil
	}
	rawZeros := func(n int64) {
		for n > 0 {
			k := min(n, int64(len(zeros)))
			b.raw.Write(zeros[:k])
			n -= k
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		e, err := s.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		if e.Offset < pos || e.Offset+e.Length > size {
			return fmt.Errorf("%w: extent [%d,%d) out of order or past the disk's %d bytes", ErrCorrupt, e.Offset, e.Offset+e.Length, size)
		}
		rawZeros(e.Offset - pos) // the hole before it
		pos = e.Offset + e.Length
		if e.Kind != KindData {
			rawZeros(e.Length)
			continue
		}
		b.raw.Write(e.Data)
		for off := e.Offset; off < pos; {
			i := int(off / cs)
			if i != idx {
				if err := flush(); err != nil {
					return err
				}
				idx = i
			}
			if cur == nil {
				cur = b.pool.Get().(*[]byte)
				clear(*cur)
			}
			start := off - int64(i)*cs
			k := min(pos, int64(i+1)*cs) - off
			copy((*cur)[start:start+k], e.Data[off-e.Offset:off-e.Offset+k])
			off += k
		}
	}
	if b.m.Size < 0 {
		b.m.Size = max(s.Info().VirtualSize, pos)
	} else if pos > b.m.Size {
		return fmt.Errorf("%w: image stream ran past its virtual size (%d > %d)", ErrCorrupt, pos, b.m.Size)
	}
	end = b.m.Size
	rawZeros(b.m.Size - pos)
	return flush()
}

func allZero(b []byte) bool {
	var z [4096]byte
	for len(b) > 0 {
		k := min(len(b), len(z))
		if !bytes.Equal(b[:k], z[:k]) {
			return false
		}
		b = b[k:]
	}
	return true
}
