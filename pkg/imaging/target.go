package imaging

import (
	"fmt"
	"os"
)

// TargetSize returns the size in bytes and the logical sector size of a
// write target: a block device (BLKGETSIZE64, BLKSSZGET) or a regular
// file (its length, 512-byte sectors).
func TargetSize(f *os.File) (int64, int, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("imaging: target: %w", err)
	}
	switch {
	case st.Mode().IsRegular():
		return st.Size(), 512, nil
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		size, sector, err := blockSize(f)
		if err != nil {
			return 0, 0, fmt.Errorf("imaging: target %s: %w", f.Name(), err)
		}
		return size, sector, nil
	}
	return 0, 0, fmt.Errorf("imaging: target %s is neither a regular file nor a block device", f.Name())
}

// RereadPartitions asks the kernel to rescan a block device's partition
// table; for a regular file it does nothing.
func RereadPartitions(f *os.File) error {
	st, err := f.Stat()
	if err != nil || st.Mode().IsRegular() {
		return err
	}
	return rereadPartitions(f)
}
