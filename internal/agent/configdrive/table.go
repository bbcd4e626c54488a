package configdrive

import (
	"encoding/binary"
	"fmt"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

// gptName is the new GPT entry's name (sgdisk -p shows it).
const gptName = "config-drive"

// addGPT moves the backup GPT to the end of a disk of diskSize bytes and
// adds an entry for want sectors at the end of the usable space.
func addGPT(bs backend.Storage, diskSize, want uint64) (Result, error) {
	res := Result{Table: "gpt"}
	t, err := gpt.Read(bs, sector, sector)
	if err != nil {
		return res, fmt.Errorf("read GPT: %w", err)
	}
	t.Resize(diskSize)
	var usedEnd uint64
	used := map[int]bool{}
	next := 1
	for _, p := range t.Partitions {
		if p.Type == gpt.Unused {
			continue
		}
		used[p.Index] = true
		usedEnd = max(usedEnd, p.End+1)
		next = max(next, p.Index+1)
	}
	for used[next] {
		next++
	}
	// The image's entries array has a fixed number of slots (128 as a
	// rule); an image that fills them all leaves none for the drive.
	if next > 128 {
		return res, fmt.Errorf("%w: the GPT's entries are all in use", ErrNoSlot)
	}
	start, err := place(usedEnd, t.LastDataSector(), want)
	if err != nil {
		return res, err
	}
	end := start + want - 1
	t.Partitions = append(t.Partitions, &gpt.Partition{Index: next, Start: start, End: end,
		Size: want * sector, Type: gpt.MicrosoftBasicData, Name: gptName})
	t.ProtectiveMBR = true
	w, err := bs.Writable()
	if err != nil {
		return res, err
	}
	if err := t.Write(w, int64(diskSize)); err != nil {
		return res, fmt.Errorf("write GPT: %w", err)
	}
	// The protective entry's size saturates at 0xFFFFFFFF on disks past
	// 2 TiB (UEFI 2.x §5.2.3); the library truncates instead.
	if last := diskSize/sector - 1; last > 0xffffffff {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], 0xffffffff)
		if _, err := w.WriteAt(b[:], 446+12); err != nil {
			return res, fmt.Errorf("write protective MBR: %w", err)
		}
	}
	res.Partition = next
	res.Start, res.Size = int64(start*sector), int64(want*sector)
	return res, nil
}

// addMBR adds a primary partition of want sectors in a free slot at the
// end of the space an MBR can address (2 TiB).
func addMBR(bs backend.Storage, diskSize, want uint64) (Result, error) {
	res := Result{Table: "mbr"}
	t, err := mbr.Read(bs, sector, sector)
	if err != nil {
		return res, fmt.Errorf("read MBR: %w", err)
	}
	lastUsable := min(diskSize/sector, 1<<32) - 1
	var usedEnd uint64
	slot := -1
	for i, p := range t.Partitions {
		if p.Type == mbr.Empty {
			if slot < 0 {
				slot = i
			}
			continue
		}
		usedEnd = max(usedEnd, uint64(p.Start)+uint64(p.Size))
	}
	if slot < 0 {
		return res, fmt.Errorf("%w: all four primary MBR slots are in use", ErrNoSlot)
	}
	start, err := place(usedEnd, lastUsable, want)
	if err != nil {
		return res, err
	}
	// CHS fields say "use LBA" (FE FF FF), as fdisk writes for
	// partitions past 8 GiB.
	t.Partitions[slot] = &mbr.Partition{Index: slot + 1, Type: mbr.Fat32LBA, Start: uint32(start), Size: uint32(want),
		StartHead: 0xfe, StartSector: 0xff, StartCylinder: 0xff, EndHead: 0xfe, EndSector: 0xff, EndCylinder: 0xff}
	w, err := bs.Writable()
	if err != nil {
		return res, err
	}
	if err := t.Write(w, int64(diskSize)); err != nil {
		return res, fmt.Errorf("write MBR: %w", err)
	}
	res.Partition = slot + 1
	res.Start, res.Size = int64(start*sector), int64(want*sector)
	return res, nil
}
