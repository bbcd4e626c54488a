package imaging

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// chunkDigests names each fixed-size chunk of a raw disk from its data
// and zero runs fed in disk order — as Write's hasher stage sees them,
// straight from the batches the writer writes, without a copy: the same
// digests as BuildManifest's. A chunk that no data touched, or whose data
// is all zeros, is a zero chunk (""); zeros before a chunk's first data
// are hashed only when data follows.
type chunkDigests struct {
	cs      int64
	chunks  []string
	idx     int   // current chunk, -1 before the first
	pos     int64 // disk offset fed up to
	h       hash.Hash
	started bool  // h holds the current chunk's bytes so far
	zeros   int64 // zero bytes of the current chunk not hashed yet (before its first data)
	nonzero bool
}

func newChunkDigests(chunkSize int64) *chunkDigests {
	return &chunkDigests{cs: chunkSize, idx: -1, h: sha256.New()}
}

// enter moves to the chunk holding pos, naming the one it leaves.
func (c *chunkDigests) enter() {
	i := int(c.pos / c.cs)
	if i == c.idx {
		return
	}
	c.close()
	c.idx, c.started, c.zeros, c.nonzero = i, false, 0, false
	c.h.Reset()
}

func (c *chunkDigests) close() {
	if c.idx < 0 || !c.started || !c.nonzero {
		return
	}
	for len(c.chunks) <= c.idx {
		c.chunks = append(c.chunks, "")
	}
	c.chunks[c.idx] = hex.EncodeToString(c.h.Sum(nil))
}

// skip feeds zeros up to offset to.
func (c *chunkDigests) skip(to int64) {
	for c.pos < to {
		c.enter()
		k := min(to, int64(c.idx+1)*c.cs) - c.pos
		if c.started {
			hashZeros(c.h, k)
		} else {
			c.zeros += k
		}
		c.pos += k
	}
}

// data feeds b, the disk's bytes at off (after any zeros up to off).
func (c *chunkDigests) data(off int64, b []byte) {
	c.skip(off)
	for len(b) > 0 {
		c.enter()
		k := min(int64(len(b)), int64(c.idx+1)*c.cs-c.pos)
		if !c.started {
			hashZeros(c.h, c.zeros)
			c.started, c.zeros = true, 0
		}
		c.h.Write(b[:k])
		if !c.nonzero && !allZero(b[:k]) {
			c.nonzero = true
		}
		c.pos += k
		b = b[k:]
	}
}

// manifest ends the disk at size and returns its chunk manifest (no raw
// SHA-256).
func (c *chunkDigests) manifest(size int64) (*Manifest, error) {
	c.skip(size)
	c.close()
	m := &Manifest{Version: ManifestVersion, ChunkSize: c.cs, Size: size, Chunks: make([]string, (size+c.cs-1)/c.cs)}
	copy(m.Chunks, c.chunks)
	return m, m.Validate()
}

func hashZeros(h hash.Hash, n int64) {
	for n > 0 {
		k := min(n, int64(len(zeroBlock)))
		h.Write(zeroBlock[:k])
		n -= k
	}
}
