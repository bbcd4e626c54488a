package imaging

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
)

// writePipe runs Write in three stages: the caller's goroutine pulls
// extents (decoding, decompression workers behind it) and copies data into
// batches; one goroutine hashes, another writes. Batches are a fixed set
// of buffers, so memory stays bounded whatever the image size.
type writePipe struct {
	w      *writer
	hashC  chan wop
	writeC chan wop
	free   chan *batch
	// borrowed bounds stream buffers handed on without a copy that are
	// still in a stage: without it the channels would pin up to 2×64
	// buffers of 4 MiB when hashing or writing is slower than decoding.
	borrowed chan struct{}
	cur      *batch
	wg       sync.WaitGroup
	werr     atomic.Pointer[error]
	sum      []byte
	closed   bool
	hashing  bool // the hasher stage runs (raw SHA-256, chunk digests or both)
	raw      bool // the whole disk's SHA-256
	// chunks, when set, names each chunk as the hasher stage sees it.
	chunks *chunkDigests
}

const (
	batchSize  = 4 << 20
	batchCount = 6
	// borrowMax is the most borrowed stream buffers (≤ 4 MiB each) in
	// flight at once.
	borrowMax = 6
)

type batch struct {
	b    []byte
	off  int64 // disk offset of b[0]
	n    int
	refs atomic.Int32
}

// wop is one operation: data (in a batch, or a buffer borrowed from the
// stream) or a zero/hole run.
type wop struct {
	bt   *batch
	data []byte
	ref  *refBuf
	// stages counts the stages still holding a borrowed buffer; the last
	// one returns its borrowed slot.
	stages *atomic.Int32
	off    int64
	n      int64
	kind   Kind
}

func (o wop) bytes() []byte {
	if o.bt != nil {
		return o.bt.b[:o.bt.n]
	}
	return o.data
}

// minBorrow is the smallest extent handed on without a copy; smaller ones
// are gathered into batches so writes stay large.
const minBorrow = 256 << 10

func newWritePipe(w *writer) *writePipe {
	p := &writePipe{w: w, hashC: make(chan wop, 64), writeC: make(chan wop, 64), free: make(chan *batch, batchCount),
		borrowed: make(chan struct{}, borrowMax)}
	for range batchCount {
		p.free <- &batch{b: alignedBuf(batchSize)}
	}
	p.raw = !w.opts.SkipHash
	if w.opts.ChunkSize > 0 {
		p.chunks = newChunkDigests(w.opts.ChunkSize)
	}
	p.hashing = p.raw || p.chunks != nil
	if p.hashing {
		p.wg.Add(1)
		go p.hasher()
	}
	p.wg.Add(1)
	go p.writer()
	return p
}

func (p *writePipe) release(b *batch) {
	if b != nil && b.refs.Add(-1) == 0 {
		p.free <- b
	}
}

func (p *writePipe) hasher() {
	defer p.wg.Done()
	h := sha256.New()
	for o := range p.hashC {
		if o.bt != nil || o.ref != nil {
			if p.raw {
				h.Write(o.bytes())
			}
			if p.chunks != nil {
				off := o.off
				if o.bt != nil {
					off = o.bt.off
				}
				p.chunks.data(off, o.bytes())
			}
			p.done(o)
			continue
		}
		if p.raw {
			hashZeros(h, o.n)
		}
		if p.chunks != nil {
			p.chunks.skip(o.off + o.n)
		}
	}
	if p.raw {
		p.sum = h.Sum(nil)
	}
}

func (p *writePipe) writer() {
	defer p.wg.Done()
	for o := range p.writeC {
		if p.werr.Load() == nil {
			var err error
			p.w.pos = o.off
			if o.bt != nil || o.ref != nil {
				err = p.w.data(o.bytes())
			} else {
				err = p.w.zeros(o.n, o.kind)
			}
			if err != nil {
				p.werr.Store(&err)
			}
		}
		p.done(o)
	}
}

func (p *writePipe) done(o wop) {
	if o.ref != nil {
		o.ref.release()
		if o.stages != nil && o.stages.Add(-1) == 0 {
			<-p.borrowed
		}
		return
	}
	p.release(o.bt)
}

// borrow hands a stream buffer to both stages without copying it.
func (p *writePipe) borrow(off int64, b []byte, ref *refBuf) {
	p.flush()
	p.borrowed <- struct{}{}
	stages := new(atomic.Int32)
	if p.hashing {
		ref.retain(2)
		stages.Store(2)
		p.hashC <- wop{data: b, ref: ref, stages: stages, off: off}
	} else {
		ref.retain(1)
		stages.Store(1)
	}
	p.writeC <- wop{data: b, ref: ref, off: off, stages: stages}
}

func (p *writePipe) err() error {
	if e := p.werr.Load(); e != nil {
		return *e
	}
	return nil
}

// data copies b (valid only until the next Stream.Next) into batches.
func (p *writePipe) data(off int64, b []byte) {
	for len(b) > 0 {
		if p.cur != nil && (p.cur.off+int64(p.cur.n) != off || p.cur.n == len(p.cur.b)) {
			p.flush()
		}
		if p.cur == nil {
			p.cur = <-p.free
			p.cur.off, p.cur.n = off, 0
		}
		c := copy(p.cur.b[p.cur.n:], b)
		p.cur.n += c
		off += int64(c)
		b = b[c:]
	}
}

func (p *writePipe) flush() {
	if p.cur == nil {
		return
	}
	if p.hashing {
		p.cur.refs.Store(2)
		p.hashC <- wop{bt: p.cur}
	} else {
		p.cur.refs.Store(1)
	}
	p.writeC <- wop{bt: p.cur, off: p.cur.off}
	p.cur = nil
}

func (p *writePipe) zeros(off, n int64, k Kind) {
	p.flush()
	if p.hashing {
		p.hashC <- wop{off: off, n: n, kind: k}
	}
	p.writeC <- wop{off: off, n: n, kind: k}
}

// wait finishes both stages and returns the digest.
func (p *writePipe) wait() ([]byte, error) {
	p.flush()
	p.close()
	return p.sum, p.err()
}

func (p *writePipe) close() {
	if p.closed {
		return
	}
	p.closed = true
	close(p.hashC)
	close(p.writeC)
	p.wg.Wait()
}
