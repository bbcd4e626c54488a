package initramfs

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/klauspost/compress/gzip"
)

// Overlay returns a gzip'ed newc archive holding files (path inside the
// initramfs → content, mode 0644), made to be appended to a built
// initramfs: Linux unpacks concatenated archives in order, a later file
// replacing an earlier one of the same name. Callers pad the initramfs
// they append to to a multiple of 4 bytes (see Pad).
func Overlay(files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	c := NewCPIOWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := c.File(n, 0o644, int64(len(files[n])), bytes.NewReader(files[n])); err != nil {
			return nil, fmt.Errorf("initramfs: overlay: %w", err)
		}
	}
	if err := c.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Pad is how many zero bytes follow an archive of size bytes before the
// next one: the kernel looks for each archive on a 4-byte boundary and
// skips zeros in between.
func Pad(size int64) int { return int((4 - size%4) % 4) }
