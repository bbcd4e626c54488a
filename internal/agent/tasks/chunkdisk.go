package tasks

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/metal-iaas/metal/pkg/imaging"
)

// chunkTarget is the disk a chunked provision writes, at any offset from
// several goroutines: pwrite and pread, O_DIRECT with aligned buffers on
// a block device (OpenTarget asks for it; the first refused aligned I/O
// turns it off for good, and the fsync at the end covers the rest), zero
// ranges offloaded (BLKZEROOUT on a block device, a punched hole in a
// regular file).
type chunkTarget struct {
	f     *os.File
	block bool
	// holes: a regular file that was emptied and sized, so every range
	// not yet written already reads as zeros.
	holes  bool
	sector int64
	direct atomic.Bool
	mu     sync.Mutex // turning O_DIRECT off
	zeros  []byte     // aligned, for written zeros
}

// openChunkTarget opens dev for a raw disk of size bytes. A regular file
// is sized to it; unless keep (delta: its contents are compared), it is
// first emptied, which makes every zero chunk a hole for free (a kept
// file of the right size is left alone: a delta that finds everything in
// place changes nothing). A block device must hold size bytes.
func openChunkTarget(dev string, size int64, keep bool) (*chunkTarget, error) {
	f, err := imaging.OpenTarget(dev)
	if err != nil {
		return nil, err
	}
	t := &chunkTarget{f: f, sector: 512}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("target %s: %w", dev, err)
	}
	switch {
	case st.Mode().IsRegular():
		if !keep {
			err = f.Truncate(0)
			t.holes = true
		}
		if err == nil && (t.holes || st.Size() != size) {
			err = f.Truncate(size)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("sizing target %s: %w", dev, err)
		}
	default:
		devSize, sector, err := imaging.TargetSize(f)
		if err == nil && devSize < size {
			err = fmt.Errorf("%w: the image has %d bytes, the device %d", imaging.ErrTargetTooSmall, size, devSize)
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		t.block, t.sector = true, int64(max(sector, 512))
		t.direct.Store(isDirect(f))
	}
	t.zeros = alignedBuf(1 << 20)
	return t, nil
}

// do runs one pread/pwrite; when O_DIRECT refuses it (EINVAL: an
// unaligned length, a device that can't), O_DIRECT is turned off and the
// I/O repeated buffered.
func (t *chunkTarget) do(io func() (int, error)) error {
	wasDirect := t.direct.Load()
	_, err := io()
	if err != nil && wasDirect && errors.Is(err, unix.EINVAL) {
		t.mu.Lock()
		if t.direct.Load() {
			fl, ferr := unix.FcntlInt(t.f.Fd(), unix.F_GETFL, 0)
			if ferr == nil {
				_, ferr = unix.FcntlInt(t.f.Fd(), unix.F_SETFL, fl&^unix.O_DIRECT)
			}
			if ferr == nil {
				t.direct.Store(false)
			}
		}
		t.mu.Unlock()
		_, err = io()
	}
	return err
}

func (t *chunkTarget) writeAt(b []byte, off int64) error {
	return t.do(func() (int, error) { return t.f.WriteAt(b, off) })
}

func (t *chunkTarget) readAt(b []byte, off int64) error {
	return t.do(func() (int, error) { return t.f.ReadAt(b, off) })
}

// zero makes [off, off+n) read as zeros: nothing on a fresh regular file,
// a punched hole on another, BLKZEROOUT of the sector-aligned middle on
// a block device; written zeros wherever that is refused.
func (t *chunkTarget) zero(off, n int64) error {
	if t.holes {
		return nil
	}
	end := off + n
	if !t.block {
		if err := unix.Fallocate(int(t.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err == nil {
			return nil
		}
		return t.writeZeros(off, end)
	}
	return imaging.ZeroRange(t.f, off, end, t.sector, t.writeZeros)
}

func (t *chunkTarget) writeZeros(off, end int64) error {
	for off < end {
		c := min(end-off, int64(len(t.zeros)))
		if err := t.writeAt(t.zeros[:c], off); err != nil {
			return err
		}
		off += c
	}
	return nil
}

// finish makes the writes durable, asks the kernel to re-read a block
// device's partition table (as the streaming path does) and closes.
func (t *chunkTarget) finish() error {
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", t.f.Name(), err)
	}
	if err := imaging.RereadPartitions(t.f); err != nil {
		return fmt.Errorf("re-reading the partition table of %s: %w", t.f.Name(), err)
	}
	return t.f.Close()
}

// Close releases the target (after finish, a no-op error ignored).
func (t *chunkTarget) Close() error { return t.f.Close() }

func isDirect(f *os.File) bool {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_DIRECT != 0
}

// alignedBuf is n bytes at a 4 KiB-aligned address, as O_DIRECT wants.
func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	a := int(uintptr(unsafe.Pointer(&b[0])) & 4095)
	if a != 0 {
		a = 4096 - a
	}
	return b[a : a+n : a+n]
}

var zeroPage [4096]byte

func allZero(b []byte) bool {
	for len(b) > 0 {
		k := min(len(b), len(zeroPage))
		if !bytes.Equal(b[:k], zeroPage[:k]) {
			return false
		}
		b = b[k:]
	}
	return true
}
