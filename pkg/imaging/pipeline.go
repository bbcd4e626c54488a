package imaging

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// pipeline turns a generator of extents, some of which still need
// decompressing, into an ordered Stream.Next: decompression runs on all
// cores, a bounded number of extents ahead, and results come out in the
// generator's order.
type pipeline struct {
	gen    func() (*item, error) // io.EOF when done
	q      []*item
	depth  int
	genErr error
	sem    chan struct{}
	prev   *item
	pool   *sync.Pool
	done   bool
}

type item struct {
	ext   Extent
	ready chan struct{} // nil when ready on creation
	err   error
	pool  *sync.Pool // buffer to give back once the caller is done
	bp    *[]byte    // the pooled buffer behind ext.Data
}

func newPipeline(gen func() (*item, error), bufSize int) *pipeline {
	n := runtime.GOMAXPROCS(0)
	depth := 4 * n
	// Keep what is in flight under ~32 MiB whatever the cluster size.
	if bufSize > 0 {
		depth = max(min(depth, (32<<20)/bufSize), 2)
	}
	return &pipeline{
		gen:   gen,
		depth: depth,
		sem:   make(chan struct{}, n),
		pool:  &sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }},
	}
}

// async queues an extent whose data work() produces into a pooled buffer.
func (p *pipeline) async(off int64, length int64, work func(dst []byte) error) *item {
	bp := p.pool.Get().(*[]byte)
	it := &item{ext: Extent{Offset: off, Length: length, Kind: KindData, Data: (*bp)[:length]}, ready: make(chan struct{}), pool: p.pool, bp: bp}
	p.sem <- struct{}{}
	go func() {
		defer func() { <-p.sem; close(it.ready) }()
		it.err = work(it.ext.Data)
	}()
	return it
}

func (p *pipeline) next() (Extent, error) {
	if p.prev != nil {
		if p.prev.ext.buf != nil {
			p.prev.ext.buf.release()
		}
		p.prev = nil
	}
	for len(p.q) < p.depth && p.genErr == nil {
		it, err := p.gen()
		if err != nil {
			p.genErr = err
			break
		}
		p.q = append(p.q, it)
	}
	if len(p.q) == 0 {
		if p.genErr == nil {
			p.genErr = io.EOF
		}
		return Extent{}, p.genErr
	}
	it := p.q[0]
	p.q[0] = nil
	p.q = p.q[1:]
	if it.ready != nil {
		<-it.ready
	}
	if it.err != nil {
		p.genErr = it.err
		for _, o := range p.q {
			if o.ready != nil {
				<-o.ready
			}
		}
		p.q = nil
		return Extent{}, it.err
	}
	if it.pool != nil && it.bp != nil {
		it.ext.buf = &refBuf{b: it.bp, pool: it.pool}
		it.ext.buf.retain(1)
	}
	p.prev = it
	return it.ext, nil
}

var (
	flatePool = sync.Pool{}
	zlibPool  = sync.Pool{}
)

// inflateRaw inflates raw deflate src into exactly len(dst) bytes. More
// output than that is a size bomb.
func inflateRaw(dst, src []byte) error {
	br := bytes.NewReader(src)
	var r io.ReadCloser
	if v := flatePool.Get(); v != nil {
		r = v.(io.ReadCloser)
		if err := r.(flate.Resetter).Reset(br, nil); err != nil {
			return err
		}
	} else {
		r = flate.NewReader(br)
	}
	defer flatePool.Put(r)
	return readExact(r, dst, "deflate")
}

// inflateZlib inflates a zlib stream (VMDK grains) into dst: at least need
// bytes, at most len(dst) (a grain at the end of the disk may hold only
// the part inside the capacity).
func inflateZlib(dst []byte, need int, src []byte) error {
	br := bytes.NewReader(src)
	var r io.ReadCloser
	var err error
	if v := zlibPool.Get(); v != nil {
		r = v.(io.ReadCloser)
		err = r.(zlib.Resetter).Reset(br, nil)
	} else {
		r, err = zlib.NewReader(br)
	}
	if err != nil {
		return fmt.Errorf("%w: zlib grain: %v", ErrCorrupt, err)
	}
	defer zlibPool.Put(r)
	n, err := io.ReadFull(r, dst)
	if err == io.ErrUnexpectedEOF && n >= need {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: zlib data inflates to %d bytes, want %d: %v", ErrCorrupt, n, len(dst), err)
	}
	var one [1]byte
	if n, _ := r.Read(one[:]); n > 0 {
		return fmt.Errorf("%w: zlib data inflates to more than %d bytes (size bomb)", ErrCorrupt, len(dst))
	}
	return nil
}

func readExact(r io.Reader, dst []byte, what string) error {
	if _, err := io.ReadFull(r, dst); err != nil {
		return fmt.Errorf("%w: %s data inflates to less than %d bytes: %v", ErrCorrupt, what, len(dst), err)
	}
	var one [1]byte
	if n, _ := r.Read(one[:]); n > 0 {
		return fmt.Errorf("%w: %s data inflates to more than %d bytes (size bomb)", ErrCorrupt, what, len(dst))
	}
	return nil
}

var (
	zstdOnce sync.Once
	zstdDec  *zstd.Decoder
	zstdErr  error
)

// unzstd decodes a zstd frame into exactly len(dst) bytes; what follows
// the frame (sector padding) is ignored, as qemu does.
func unzstd(dst, src []byte) error {
	zstdOnce.Do(func() {
		zstdDec, zstdErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithDecodeAllCapLimit(true), zstd.WithDecoderMaxMemory(4<<20))
	})
	if zstdErr != nil {
		return zstdErr
	}
	n, err := zstdFrameLen(src)
	if err != nil {
		return fmt.Errorf("%w: zstd cluster: %v", ErrCorrupt, err)
	}
	out, err := zstdDec.DecodeAll(src[:n], dst[:0])
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return fmt.Errorf("%w: zstd data decodes to more than %d bytes (size bomb)", ErrCorrupt, len(dst))
	}
	if err != nil {
		return fmt.Errorf("%w: zstd cluster: %v", ErrCorrupt, err)
	}
	if len(out) != len(dst) {
		return fmt.Errorf("%w: zstd data decodes to %d bytes, want %d", ErrCorrupt, len(out), len(dst))
	}
	if &out[0] != &dst[0] {
		copy(dst, out)
	}
	return nil
}

// zstdFrameLen walks the block headers of the zstd frame at the start of
// src and returns its length, so that what follows it (sector padding, the
// next cluster) is never decoded.
func zstdFrameLen(src []byte) (int, error) {
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return 0, err
	}
	if h.Skippable {
		return 0, errors.New("skippable frame")
	}
	off := h.HeaderSize
	for {
		if off+3 > len(src) {
			return 0, errors.New("frame truncated")
		}
		bh := uint32(src[off]) | uint32(src[off+1])<<8 | uint32(src[off+2])<<16
		off += 3
		size := int(bh >> 3)
		switch (bh >> 1) & 3 {
		case 0, 2: // raw, compressed
			off += size
		case 1: // RLE
			off++
		default:
			return 0, errors.New("reserved block type")
		}
		if bh&1 != 0 {
			break
		}
	}
	if h.HasCheckSum {
		off += 4
	}
	if off > len(src) {
		return 0, errors.New("frame truncated")
	}
	return off, nil
}
