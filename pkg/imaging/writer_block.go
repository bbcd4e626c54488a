package imaging

import (
	"fmt"
	"os"
	"unsafe"
)

// Block-device side of the writer: the aligned staging buffer and zeroing.

func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	a := int(uintptr(unsafe.Pointer(&b[0])) & 4095)
	if a != 0 {
		a = 4096 - a
	}
	return b[a : a+n : a+n]
}

// stageRoom makes sure the staging buffer continues at w.pos and has room.
func (w *writer) stageRoom() error {
	if w.stageLen > 0 && (w.stageOff+int64(w.stageLen) != w.pos || w.stageLen == len(w.stage)) {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if w.stageLen == 0 {
		w.stageOff = w.pos
	}
	return nil
}

func (w *writer) flush() error {
	if w.stageLen == 0 {
		return nil
	}
	b := w.stage[:w.stageLen]
	_, err := w.f.WriteAt(b, w.stageOff)
	if err != nil && w.direct {
		// O_DIRECT refuses unaligned offsets or lengths (the tail of an
		// odd-sized image); finish without it.
		if cerr := clearDirect(w.f); cerr == nil {
			w.direct = false
			_, err = w.f.WriteAt(b, w.stageOff)
		}
	}
	if err != nil {
		return fmt.Errorf("imaging: writing %s at %d: %w", w.f.Name(), w.stageOff, err)
	}
	w.stageLen = 0
	return nil
}

// zeros accounts for n bytes of zeros or hole at w.pos.
func (w *writer) zeros(n int64, k Kind) error {
	if err := w.checkRoom(n); err != nil {
		return err
	}
	if !w.block || w.opts.SkipHoles {
		w.holeB += n
		w.pos += n
		return nil
	}
	w.zeroB += n
	w.zeroed.Add(n)
	// Short runs join the staging buffer; long ones are offloaded.
	if n <= 64<<10 {
		for n > 0 {
			if err := w.stageRoom(); err != nil {
				return err
			}
			c := min(n, int64(len(w.stage)-w.stageLen))
			clear(w.stage[w.stageLen : w.stageLen+int(c)])
			w.stageLen += int(c)
			w.pos += c
			n -= c
		}
		return nil
	}
	if err := w.flush(); err != nil {
		return err
	}
	off, end := w.pos, w.pos+n
	w.pos = end
	return ZeroRange(w.f, off, end, int64(w.sector), w.writeZeros)
}

// ZeroRange makes [off, end) of the block device f read as zeros:
// BLKZEROOUT of the sector-aligned middle (sector 0 means 512), and
// write(from, to) for the ragged ends — or for all of it where the
// device refuses.
func ZeroRange(f *os.File, off, end, sector int64, write func(from, to int64) error) error {
	ss := max(sector, 512)
	a := (off + ss - 1) / ss * ss
	b := end / ss * ss
	if a < b && zeroOut(f, a, b-a) == nil {
		if err := write(off, a); err != nil {
			return err
		}
		return write(b, end)
	}
	return write(off, end)
}

func (w *writer) writeZeros(off, end int64) error {
	for off < end {
		c := min(end-off, int64(len(w.zeroAligned)))
		_, err := w.f.WriteAt(w.zeroAligned[:c], off)
		if err != nil && w.direct {
			if cerr := clearDirect(w.f); cerr == nil {
				w.direct = false
				_, err = w.f.WriteAt(w.zeroAligned[:c], off)
			}
		}
		if err != nil {
			return fmt.Errorf("imaging: zeroing %s at %d: %w", w.f.Name(), off, err)
		}
		off += c
	}
	return nil
}
