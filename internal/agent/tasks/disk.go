// Package tasks runs the agent's disk tasks: provision (an image onto the
// disk chosen by root-device hints: streamed with HTTP Range resume, or,
// when the image has a chunk manifest, written as verified chunks with
// an optional delta against what the disk holds) and wipe (erase
// partition tables and signatures).
package tasks

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// ErrNoDisk means no disk satisfies the hints and the size.
var ErrNoDisk = errors.New("no suitable disk")

// SelectDisk picks the target disk: every set hint must match (Name with
// or without /dev/, Serial and WWN case-insensitively, MinSizeBytes), the
// disk must hold need bytes, and among the candidates the smallest wins
// (ties: by name). Removable disks are chosen only when named by a hint.
func SelectDisk(disks []agentapi.Disk, h *agentapi.RootDeviceHints, need int64) (agentapi.Disk, error) {
	var hints agentapi.RootDeviceHints
	if h != nil {
		hints = *h
	}
	named := hints.Name != "" || hints.Serial != "" || hints.WWN != ""
	var cands []agentapi.Disk
	var why []string
	for _, d := range disks {
		switch {
		case hints.Name != "" && strings.TrimPrefix(hints.Name, "/dev/") != d.Name:
			continue
		case hints.Serial != "" && !strings.EqualFold(hints.Serial, d.Serial):
			continue
		case hints.WWN != "" && !strings.EqualFold(strings.TrimPrefix(hints.WWN, "0x"), strings.TrimPrefix(d.WWN, "0x")):
			continue
		case d.Removable && !named:
			why = append(why, d.Name+" is removable")
			continue
		case hints.MinSizeBytes > 0 && d.SizeBytes < hints.MinSizeBytes:
			why = append(why, fmt.Sprintf("%s has %d bytes < min_size_bytes %d", d.Name, d.SizeBytes, hints.MinSizeBytes))
			continue
		case d.SizeBytes < need:
			why = append(why, fmt.Sprintf("%s has %d bytes < image %d", d.Name, d.SizeBytes, need))
			continue
		}
		cands = append(cands, d)
	}
	if len(cands) == 0 {
		names := make([]string, 0, len(disks))
		for _, d := range disks {
			names = append(names, d.Name)
		}
		msg := fmt.Sprintf("%d disks [%s], hints %+v", len(disks), strings.Join(names, " "), hints)
		if len(why) > 0 {
			msg += ": " + strings.Join(why, "; ")
		}
		return agentapi.Disk{}, fmt.Errorf("%w: %s", ErrNoDisk, msg)
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].SizeBytes != cands[j].SizeBytes {
			return cands[i].SizeBytes < cands[j].SizeBytes
		}
		return cands[i].Name < cands[j].Name
	})
	return cands[0], nil
}
