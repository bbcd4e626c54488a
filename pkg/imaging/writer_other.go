//go:build !linux

package imaging

import (
	"errors"
	"os"
)

var errNoBlockDevices = errors.New("block devices are supported on Linux only")

// OpenTarget opens (or creates) path as a regular file for Write.
func OpenTarget(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
}

func blockSize(*os.File) (int64, int, error) { return 0, 0, errNoBlockDevices }
func zeroOut(*os.File, int64, int64) error   { return errNoBlockDevices }
func rereadPartitions(*os.File) error        { return nil }
func isDirect(*os.File) bool                 { return false }
func clearDirect(*os.File) error             { return nil }
