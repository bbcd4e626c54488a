package imaging

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
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
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	b, err := newChunkBuilder(ctx, cancel, s.Info(), chunkSize, sink, true)
	if err != nil {
		return nil, err
	}
	err = b.fill(ctx, s)
	return b.finish(ctx, err)
}

// newChunkBuilder starts the hashing workers for a manifest of a disk
// described by info, with the raw SHA-256 when raw.
func newChunkBuilder(ctx context.Context, cancel context.CancelCauseFunc, info Info, chunkSize int64, sink ChunkSink, raw bool) (*chunkBuilder, error) {
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	if chunkSize < 4096 || chunkSize%4096 != 0 || chunkSize > 1<<30 {
		return nil, fmt.Errorf("%w: chunk size %d is not a multiple of 4 KiB up to 1 GiB", ErrManifest, chunkSize)
	}
	// Raw input from a pipe learns its size only at the end (-1 until
	// then): the chunk count follows the stream.
	m := &Manifest{Version: ManifestVersion, ChunkSize: chunkSize, Size: info.VirtualSize}
	b := &chunkBuilder{m: m, sink: sink, seen: map[string]bool{}, digests: map[int]string{},
		work: make(chan chunkJob, 4*runtime.GOMAXPROCS(0))}
	// Enough buffers for every chunk queued or being hashed and one being
	// filled, within 256 MiB (at least two), allocated as needed.
	n := min(cap(b.work)+runtime.GOMAXPROCS(0)+1, max(2, int((256<<20)/chunkSize)))
	b.free, b.spare = make(chan *[]byte, n), n
	if raw {
		b.raw = sha256.New()
	}
	b.start(ctx, cancel)
	return b, nil
}

// finish waits for the workers and assembles the manifest; err is the
// filling's.
func (b *chunkBuilder) finish(ctx context.Context, err error) (*Manifest, error) {
	close(b.work)
	b.wg.Wait()
	if err == nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		return nil, err
	}
	m := b.m
	if b.raw != nil {
		m.RawSHA256 = hex.EncodeToString(b.raw.Sum(nil))
	}
	m.Chunks = make([]string, (m.Size+m.ChunkSize-1)/m.ChunkSize)
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
	raw  hash.Hash // the whole disk's SHA-256; nil: none
	work chan chunkJob
	// free holds the chunk buffers, a fixed set reused for the whole
	// build (a sync.Pool would drop them at every GC, and each new 4 MiB
	// buffer costs its page faults again).
	free    chan *[]byte
	spare   int // buffers not allocated yet (the filler's to count)
	wg      sync.WaitGroup
	mu      sync.Mutex
	seen    map[string]bool
	digests map[int]string // chunk index → digest, for non-zero chunks
}

func (b *chunkBuilder) start(ctx context.Context, cancel context.CancelCauseFunc) {
	for range runtime.GOMAXPROCS(0) {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for j := range b.work {
				if ctx.Err() == nil {
					if err := b.hash(j); err != nil {
						cancel(err)
					}
				}
				b.free <- j.buf
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
	f := b.filler(ctx)
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
		if err := f.add(e); err != nil {
			return err
		}
	}
	return f.done(s.Info())
}

// chunkFiller assembles extents, in order, into chunk buffers and queues
// each chunk to the workers when the stream moves past it; the raw
// digest (when the builder keeps one) is fed on the way.
type chunkFiller struct {
	b        *chunkBuilder
	ctx      context.Context
	cs, size int64
	end      int64 // the disk's end, for the length of the last chunk
	pos      int64 // raw bytes seen so far
	cur      *[]byte
	curFill  int64 // bytes of cur set so far (the rest is stale)
	idx      int
}

func (b *chunkBuilder) filler(ctx context.Context) *chunkFiller {
	size := b.m.Size
	if size < 0 {
		size = 1<<63 - 1 // learnt at the end
	}
	return &chunkFiller{b: b, ctx: ctx, cs: b.m.ChunkSize, size: size, end: size, idx: -1}
}

func (f *chunkFiller) flush() error {
	if f.cur == nil {
		return nil
	}
	n := min(f.cs, f.end-int64(f.idx)*f.cs)
	if f.curFill < n {
		clear((*f.cur)[f.curFill:n]) // zeros after the chunk's last data
	}
	select {
	case f.b.work <- chunkJob{index: f.idx, buf: f.cur, n: n}:
	case <-f.ctx.Done():
		return context.Cause(f.ctx)
	}
	f.cur = nil
	return nil
}

func (f *chunkFiller) rawZeros(n int64) {
	if f.b.raw != nil {
		hashZeros(f.b.raw, n)
	}
}

// add takes the next extent (its data is copied before add returns).
func (f *chunkFiller) add(e Extent) error {
	if e.Offset < f.pos || e.Offset+e.Length > f.size {
		return fmt.Errorf("%w: extent [%d,%d) out of order or past the disk's %d bytes", ErrCorrupt, e.Offset, e.Offset+e.Length, f.size)
	}
	f.rawZeros(e.Offset - f.pos) // the hole before it
	f.pos = e.Offset + e.Length
	if e.Kind != KindData {
		f.rawZeros(e.Length)
		return nil
	}
	if f.b.raw != nil {
		f.b.raw.Write(e.Data)
	}
	cs := f.cs
	for off := e.Offset; off < f.pos; {
		i := int(off / cs)
		if i != f.idx {
			if err := f.flush(); err != nil {
				return err
			}
			f.idx = i
		}
		if f.cur == nil {
			if err := f.buffer(); err != nil {
				return err
			}
		}
		start := off - int64(i)*cs
		k := min(f.pos, int64(i+1)*cs) - off
		if start > f.curFill {
			clear((*f.cur)[f.curFill:start]) // a hole or zeros inside the chunk
		}
		copy((*f.cur)[start:start+k], e.Data[off-e.Offset:off-e.Offset+k])
		f.curFill = start + k
		off += k
	}
	return nil
}

// buffer takes a free chunk buffer, allocating one while the set is not
// complete, else waiting for a worker to give one back.
func (f *chunkFiller) buffer() error {
	f.curFill = 0
	select {
	case f.cur = <-f.b.free:
		return nil
	default:
	}
	if f.b.spare > 0 {
		f.b.spare--
		buf := make([]byte, f.cs)
		f.cur = &buf
		return nil
	}
	select {
	case f.cur = <-f.b.free:
		return nil
	case <-f.ctx.Done():
		return context.Cause(f.ctx)
	}
}

// done ends the stream: the size is settled and the last chunk queued.
func (f *chunkFiller) done(info Info) error {
	if f.b.m.Size < 0 {
		f.b.m.Size = max(info.VirtualSize, f.pos)
	} else if f.pos > f.b.m.Size {
		return fmt.Errorf("%w: image stream ran past its virtual size (%d > %d)", ErrCorrupt, f.pos, f.b.m.Size)
	}
	f.end = f.b.m.Size
	f.rawZeros(f.b.m.Size - f.pos)
	return f.flush()
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
