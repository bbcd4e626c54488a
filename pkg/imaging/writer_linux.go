//go:build linux

package imaging

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OpenTarget opens path for Write. A block device is opened exclusively
// (O_EXCL: the kernel refuses while it is mounted or claimed) and with
// O_DIRECT so large aligned writes bypass the page cache; anything else is
// opened (or created) as a regular file.
func OpenTarget(path string) (*os.File, error) {
	st, err := os.Stat(path)
	if err == nil && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0 {
		f, err := os.OpenFile(path, os.O_RDWR|unix.O_EXCL|unix.O_DIRECT|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EINVAL) {
			f, err = os.OpenFile(path, os.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0)
		}
		if err != nil {
			return nil, fmt.Errorf("imaging: opening block device %s: %w", path, err)
		}
		return f, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("imaging: opening target %s: %w", path, err)
	}
	return f, nil
}

func ioctlPtr(f *os.File, req uintptr, arg unsafe.Pointer) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno unix.Errno
	if cerr := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
	}); cerr != nil {
		return cerr
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// blockSize returns the size in bytes and the logical sector size of a
// block device.
func blockSize(f *os.File) (int64, int, error) {
	var size uint64
	if err := ioctlPtr(f, unix.BLKGETSIZE64, unsafe.Pointer(&size)); err != nil {
		return 0, 0, fmt.Errorf("BLKGETSIZE64: %w", err)
	}
	var ssz int32
	if err := ioctlPtr(f, unix.BLKSSZGET, unsafe.Pointer(&ssz)); err != nil || ssz <= 0 {
		ssz = 512
	}
	return int64(size), int(ssz), nil
}

// zeroOut zeroes [off, off+n) of a block device with BLKZEROOUT; it
// returns an error when the device can't, and the caller writes zeros.
func zeroOut(f *os.File, off, n int64) error {
	r := [2]uint64{uint64(off), uint64(n)}
	return ioctlPtr(f, unix.BLKZEROOUT, unsafe.Pointer(&r))
}

// rereadPartitions asks the kernel to rescan the device's partition table;
// devices that have none to rescan answer EINVAL, which is fine.
func rereadPartitions(f *os.File) error {
	err := ioctlPtr(f, unix.BLKRRPART, nil)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) {
		return nil
	}
	return err
}

// isDirect reports whether f was opened with O_DIRECT.
func isDirect(f *os.File) bool {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_DIRECT != 0
}

// clearDirect turns O_DIRECT off for a final unaligned write.
func clearDirect(f *os.File) error {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	_, err = unix.FcntlInt(f.Fd(), unix.F_SETFL, fl&^unix.O_DIRECT)
	return err
}
