// Package configdrive appends a config drive to a disk that already holds
// an image: a new partition at the very end of the disk, so that the
// image's root partition can still grow into the space between (cloud-init
// growpart), holding a FAT32 filesystem (written here, fat.go) with a label and a few files —
// cloud-init's NoCloud seed (CIDATA) or OpenStack's config drive
// (CONFIG-2).
//
// MBR disks get the partition in a free primary slot; GPT disks first
// have their backup header and table moved to the new end of the disk
// (the image was built for a smaller one), then get a new entry, and keep
// their protective MBR valid. Boot code in the first 440 bytes of the
// disk is never touched. Partition tables are read and written with
// github.com/diskfs/go-diskfs.
package configdrive

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/backend/file"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/imaging"
)

// Errors that say why a disk cannot take a config drive.
var (
	ErrNoTable = errors.New("no partition table")
	ErrNoSlot  = errors.New("no free partition slot")
	ErrNoRoom  = errors.New("no room for the config drive")
)

const (
	sector = 512
	// align is where the partition starts: a MiB boundary.
	align = (1 << 20) / sector
)

// Result says where the config drive went.
type Result struct {
	// Table is "gpt" or "mbr".
	Table string
	// Partition is the new partition's number (vda<Partition>).
	Partition int
	// Start and Size are in bytes.
	Start, Size int64
}

// Write appends d to the disk open in f (a block device, or a regular
// file that is extended to diskSize when shorter). diskSize 0 means the
// target's own size.
func Write(f *os.File, diskSize int64, d agentapi.ConfigDrive) (Result, error) {
	var res Result
	if err := d.Validate(); err != nil {
		return res, err
	}
	size, ssz, err := imaging.TargetSize(f)
	if err != nil {
		return res, err
	}
	if ssz != sector {
		return res, fmt.Errorf("configdrive: %s has %d-byte sectors; only 512 is supported", f.Name(), ssz)
	}
	if diskSize == 0 {
		diskSize = size
	}
	if size < diskSize {
		st, _ := f.Stat()
		if st == nil || !st.Mode().IsRegular() {
			return res, fmt.Errorf("configdrive: %s has %d bytes, not %d", f.Name(), size, diskSize)
		}
		if err := f.Truncate(diskSize); err != nil {
			return res, fmt.Errorf("configdrive: extend %s: %w", f.Name(), err)
		}
	}
	mbr0 := make([]byte, sector)
	if _, err := f.ReadAt(mbr0, 0); err != nil {
		return res, fmt.Errorf("configdrive: read sector 0 of %s: %w", f.Name(), err)
	}
	if mbr0[510] != 0x55 || mbr0[511] != 0xaa {
		return res, fmt.Errorf("configdrive: %w on %s: the image is not a partitioned disk (a bare filesystem?); provision with --config-drive none", ErrNoTable, f.Name())
	}
	bs := file.New(f, false)
	want := uint64(d.SizeBytes / sector)
	if isGPT(mbr0) {
		res, err = addGPT(bs, uint64(diskSize), want)
	} else {
		res, err = addMBR(bs, uint64(diskSize), want)
	}
	if err != nil {
		return res, fmt.Errorf("configdrive: %s: %w", f.Name(), err)
	}
	if err := format(bs, res, d); err != nil {
		return res, fmt.Errorf("configdrive: %s partition %d: %w", f.Name(), res.Partition, err)
	}
	if err := f.Sync(); err != nil {
		return res, fmt.Errorf("configdrive: sync %s: %w", f.Name(), err)
	}
	if err := imaging.RereadPartitions(f); err != nil {
		return res, fmt.Errorf("configdrive: re-read partitions of %s: %w", f.Name(), err)
	}
	return res, nil
}

// isGPT reports a protective (or hybrid) MBR: an entry of type 0xEE.
func isGPT(mbr0 []byte) bool {
	for i := range 4 {
		if mbr0[446+16*i+4] == 0xee {
			return true
		}
	}
	return false
}

// place puts want sectors at the end of [usedEnd, lastUsable], starting
// on a MiB boundary.
func place(usedEnd, lastUsable, want uint64) (uint64, error) {
	if lastUsable+1 < want {
		return 0, fmt.Errorf("%w: the disk has %d usable sectors, the drive needs %d", ErrNoRoom, lastUsable+1, want)
	}
	start := (lastUsable + 1 - want) / align * align
	if start < usedEnd {
		return 0, fmt.Errorf("%w: the image's partitions end at sector %d and the disk's last usable sector is %d: %d sectors (%d MiB) do not fit after them",
			ErrNoRoom, usedEnd, lastUsable, want, want*sector>>20)
	}
	return start, nil
}

// format zeroes the ends of the partition (stale signatures would make
// blkid hesitate), creates FAT32 with the label and writes the files.
func format(bs backend.Storage, res Result, d agentapi.ConfigDrive) error {
	w, err := bs.Writable()
	if err != nil {
		return err
	}
	zero := make([]byte, 1<<20)
	for _, off := range []int64{res.Start, res.Start + res.Size - int64(len(zero))} {
		if _, err := w.WriteAt(zero, off); err != nil {
			return fmt.Errorf("clear: %w", err)
		}
	}
	files := make(map[string][]byte, len(d.Files))
	for _, fl := range d.Files {
		files[fl.Path] = fl.Data
	}
	if err := writeFAT32(w, res.Start, res.Size, uint32(res.Start/sector), strings.ToUpper(d.Label), files, time.Now()); err != nil {
		return fmt.Errorf("FAT32: %w", err)
	}
	return nil
}

// PartitionDevice names partition n of disk: vda → vda2, nvme0n1 →
// nvme0n1p2 (a disk name ending in a digit takes a "p").
func PartitionDevice(disk string, n int) string {
	if disk != "" && disk[len(disk)-1] >= '0' && disk[len(disk)-1] <= '9' {
		return fmt.Sprintf("%sp%d", disk, n)
	}
	return fmt.Sprintf("%s%d", disk, n)
}
