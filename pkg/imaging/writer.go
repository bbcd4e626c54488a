package imaging

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// WriteOptions tune Write.
type WriteOptions struct {
	// SkipHoles says a block device target is known to read as zeros
	// (freshly discarded or thin-provisioned), so holes and zero ranges
	// are not written. Regular files always get holes.
	SkipHoles bool
	// Progress, if set, is called at most every Interval and once at the
	// end with Done set.
	Progress func(Progress)
	// Interval between progress reports; zero means one second.
	Interval time.Duration
	// Input, if set, is the counter around the image reader; its count
	// goes into Progress.BytesRead.
	Input *CountingReader
	// SkipHash leaves Result.SHA256 empty. Hashing runs on its own core
	// at ~1.6 GB/s here and is the floor of Write's speed for uncompressed
	// images read from a warm page cache; it is hidden behind any network
	// or disk slower than that.
	SkipHash bool
	// ChunkSize, when set, has Result.Manifest describe the raw disk in
	// chunks of this size (a multiple of 4096), hashed in the hasher stage
	// from the very batches the writer writes: the chunk digest for the
	// price of hashing the data alone, never the holes or zeros.
	ChunkSize int64
}

// Result summarises a completed Write.
type Result struct {
	Info Info `json:"info"`
	// Size is the number of bytes of raw disk produced.
	Size int64 `json:"size"`
	// DataBytes were written as data; ZeroBytes were zeroed on the
	// target (BLKZEROOUT or written zeros); HoleBytes were left as holes
	// (regular files, or SkipHoles).
	DataBytes int64 `json:"data_bytes"`
	ZeroBytes int64 `json:"zero_bytes"`
	HoleBytes int64 `json:"hole_bytes"`
	// SHA256 is the hex digest of the whole raw disk, holes as zeros:
	// equal to sha256sum of `qemu-img convert -O raw` output.
	SHA256 string `json:"sha256"`
	// Manifest is the chunk manifest with WriteOptions.ChunkSize (its
	// RawSHA256 set when SHA256 is).
	Manifest *Manifest     `json:"manifest,omitempty"`
	Duration time.Duration `json:"duration"`
	// BlockDevice tells whether dst was a block device.
	BlockDevice bool `json:"block_device"`
}

// ErrTargetTooSmall means the raw disk doesn't fit on the target device.
var ErrTargetTooSmall = errors.New("target too small")

const stageSize = 8 << 20

// Write puts the raw disk of s onto dst.
//
// A regular file is first truncated to zero and then to the virtual size,
// so it starts as one hole: data is written with pwrite, zero and hole
// extents (and all-zero data) are skipped and read back as zeros, which
// also makes the file sparse. Whatever the file held before is discarded.
//
// A block device must be at least the virtual size, which is checked before
// the first write. Data goes through an aligned staging buffer in large
// writes (O_DIRECT when dst was opened with it, see OpenTarget); zero and
// hole ranges are zeroed with BLKZEROOUT, falling back to writing zeros,
// unless opts.SkipHoles. At the end the device is fsynced and the kernel is
// asked to re-read its partition table (BLKRRPART).
//
// Any error from the stream (including a trailing digest mismatch, which
// an OVA reports only after its last extent) is returned as Write's error:
// the target must then be considered garbage.
func Write(ctx context.Context, s Stream, dst *os.File, opts WriteOptions) (Result, error) {
	start := time.Now()
	info := s.Info()
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if c := opts.ChunkSize; c != 0 && (c < 4096 || c%4096 != 0 || c > 1<<30) {
		return Result{}, fmt.Errorf("%w: chunk size %d is not a multiple of 4 KiB up to 1 GiB", ErrManifest, c)
	}
	w := &writer{f: dst, size: info.VirtualSize, opts: opts}
	w.prog = progressTicker{fn: opts.Progress, interval: opts.Interval, start: start, last: start, in: opts.Input}
	if err := w.prepare(); err != nil {
		return Result{}, err
	}
	p := newWritePipe(w)
	fail := func(err error) (Result, error) {
		p.close()
		return w.result(info, start), err
	}
	var pos int64
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := p.err(); err != nil {
			return fail(err)
		}
		e, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
		if e.Offset < pos || e.Length <= 0 {
			return fail(fmt.Errorf("%w: extent [%d,+%d) overlaps or precedes offset %d", ErrCorrupt, e.Offset, e.Length, pos))
		}
		if w.block && e.Offset+e.Length > w.devSize {
			return fail(fmt.Errorf("%w: the image extends past %d bytes, the size of %s", ErrTargetTooSmall, w.devSize, w.f.Name()))
		}
		if e.Offset > pos {
			p.zeros(pos, e.Offset-pos, KindHole)
		}
		if e.Kind == KindData {
			if int64(len(e.Data)) != e.Length {
				return fail(fmt.Errorf("imaging: data extent at %d has %d bytes for length %d", e.Offset, len(e.Data), e.Length))
			}
			if e.buf != nil && len(e.Data) >= minBorrow {
				p.borrow(e.Offset, e.Data, e.buf)
			} else {
				p.data(e.Offset, e.Data)
			}
		} else {
			p.zeros(e.Offset, e.Length, e.Kind)
		}
		pos = e.Offset + e.Length
		w.tick(pos, false)
	}
	end := w.size
	if end < 0 {
		end = pos
	}
	if pos < end {
		p.zeros(pos, end-pos, KindHole)
		pos = end
	}
	sum, err := p.wait()
	if err != nil {
		return w.result(info, start), err
	}
	if err := w.finish(pos); err != nil {
		return w.result(info, start), err
	}
	res := w.result(info, start)
	if sum != nil {
		res.SHA256 = hex.EncodeToString(sum)
	}
	if p.chunks != nil {
		if res.Manifest, err = p.chunks.manifest(pos); err != nil {
			return res, err
		}
		res.Manifest.RawSHA256 = res.SHA256
	}
	w.tick(pos, true)
	return res, nil
}

type writer struct {
	f       *os.File
	size    int64 // virtual size, -1 unknown
	devSize int64
	sector  int
	block   bool
	direct  bool
	opts    WriteOptions
	prog    progressTicker

	pos                     int64
	dataBytes, zeroB, holeB int64
	written, zeroed         atomic.Int64 // for progress, read by the caller's goroutine
	stage                   []byte       // aligned staging buffer (block devices)
	stageOff                int64
	stageLen                int
	zeroAligned             []byte
}

func (w *writer) prepare() error {
	st, err := w.f.Stat()
	if err != nil {
		return fmt.Errorf("imaging: target: %w", err)
	}
	switch {
	case st.Mode().IsRegular():
		if err := w.f.Truncate(0); err != nil {
			return fmt.Errorf("imaging: truncating target: %w", err)
		}
		if w.size > 0 {
			if err := w.f.Truncate(w.size); err != nil {
				return fmt.Errorf("imaging: sizing target: %w", err)
			}
		}
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		w.block = true
		w.devSize, w.sector, err = blockSize(w.f)
		if err != nil {
			return fmt.Errorf("imaging: target %s: %w", w.f.Name(), err)
		}
		if w.size > w.devSize {
			return fmt.Errorf("%w: the image's virtual size is %d bytes, the device %s has %d", ErrTargetTooSmall, w.size, w.f.Name(), w.devSize)
		}
		w.direct = isDirect(w.f)
		w.stage = alignedBuf(stageSize)
		w.zeroAligned = alignedBuf(1 << 20)
	default:
		return fmt.Errorf("imaging: target %s is neither a regular file nor a block device", w.f.Name())
	}
	return nil
}

func (w *writer) checkRoom(n int64) error {
	if w.block && w.pos+n > w.devSize {
		return fmt.Errorf("%w: the image extends past %d bytes, the size of %s", ErrTargetTooSmall, w.devSize, w.f.Name())
	}
	return nil
}

func (w *writer) data(b []byte) error {
	n := int64(len(b))
	if err := w.checkRoom(n); err != nil {
		return err
	}
	if !w.block {
		// Like qemu-img's -S 4k: all-zero 4 KiB granules stay holes.
		off := w.pos
		for len(b) > 0 {
			z := 0
			for z < len(b) && isZero(b[z:min(z+zeroGranule, len(b))]) {
				z = min(z+zeroGranule, len(b))
			}
			w.holeB += int64(z)
			off += int64(z)
			b = b[z:]
			d := 0
			for d < len(b) && !isZero(b[d:min(d+zeroGranule, len(b))]) {
				d = min(d+zeroGranule, len(b))
			}
			if d > 0 {
				if _, err := w.f.WriteAt(b[:d], off); err != nil {
					return fmt.Errorf("imaging: writing target at %d: %w", off, err)
				}
				w.dataBytes += int64(d)
				w.written.Add(int64(d))
			}
			off += int64(d)
			b = b[d:]
		}
		w.pos += n
		return nil
	}
	w.dataBytes += n
	w.written.Add(n)
	for len(b) > 0 {
		if err := w.stageRoom(); err != nil {
			return err
		}
		c := copy(w.stage[w.stageLen:], b)
		w.stageLen += c
		w.pos += int64(c)
		b = b[c:]
	}
	return nil
}

func (w *writer) finish(size int64) error {
	if err := w.flush(); err != nil {
		return err
	}
	if !w.block && w.size < 0 {
		if err := w.f.Truncate(size); err != nil {
			return fmt.Errorf("imaging: sizing target: %w", err)
		}
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("imaging: syncing target: %w", err)
	}
	if w.block {
		if err := rereadPartitions(w.f); err != nil {
			return fmt.Errorf("imaging: re-reading partition table of %s: %w", w.f.Name(), err)
		}
	}
	return nil
}

func (w *writer) tick(pos int64, done bool) {
	if w.prog.fn == nil {
		return
	}
	w.prog.report(Progress{
		Position:     pos,
		BytesWritten: w.written.Load(),
		ZeroBytes:    w.zeroed.Load(),
		Total:        w.size,
		Done:         done,
	}, done)
}

func (w *writer) result(info Info, start time.Time) Result {
	return Result{
		Info: info, Size: w.pos, DataBytes: w.dataBytes, ZeroBytes: w.zeroB, HoleBytes: w.holeB,
		Duration: time.Since(start), BlockDevice: w.block,
	}
}
