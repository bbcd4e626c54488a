package imaging

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// ManifestOfRaw describes the first size bytes of a raw disk already
// written to f (a regular file or a block device) as a chunk manifest,
// reading it back on every core: a chunk with no data extent in a sparse
// file (SEEK_DATA) is a zero chunk without a byte read; the others are
// read with pread and hashed, or found to be zeros. The result equals
// BuildManifest's for the image f was converted from, without its raw
// SHA-256 (RawSHA256 empty): this digest costs a fraction of the
// conversion, where one SHA-256 over the whole disk runs on one core over
// every byte, holes included.
func ManifestOfRaw(ctx context.Context, f *os.File, size, chunkSize int64) (*Manifest, error) {
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	if chunkSize < 4096 || chunkSize%4096 != 0 || chunkSize > 1<<30 {
		return nil, fmt.Errorf("%w: chunk size %d is not a multiple of 4 KiB up to 1 GiB", ErrManifest, chunkSize)
	}
	m := &Manifest{Version: ManifestVersion, ChunkSize: chunkSize, Size: size, Chunks: make([]string, (size+chunkSize-1)/chunkSize)}
	fd := int(f.Fd())
	sparse := true
	if _, err := unix.Seek(fd, 0, unix.SEEK_DATA); err != nil && !errors.Is(err, unix.ENXIO) {
		sparse = false // no SEEK_DATA here (a device, an old filesystem): read everything
	}
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			buf := alignedBuf(int(chunkSize)) // O_DIRECT block devices want it
			for i := range next {
				off, n := m.ChunkRange(i)
				if sparse && !hasData(fd, off, n) {
					continue // a hole: zero chunk
				}
				if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
					fail(fmt.Errorf("reading chunk %d at offset %d: %w", i, off, err))
					continue
				}
				if allZero(buf[:n]) {
					continue
				}
				sum := sha256.Sum256(buf[:n])
				m.Chunks[i] = hex.EncodeToString(sum[:]) // each worker its own index
			}
		})
	}
feed:
	for i := range m.Chunks {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return m, m.Validate()
}

// hasData reports whether [off, off+n) of fd holds a data extent; true
// when it cannot tell.
func hasData(fd int, off, n int64) bool {
	d, err := unix.Seek(fd, off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return false // no data from off to the end
	}
	return err != nil || d < off+n
}
