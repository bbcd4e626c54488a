package ovf

import (
	"fmt"
	"strconv"
	"strings"
)

// Envelope is the part of an OVF descriptor that matters for deploying
// its disks.
type Envelope struct {
	// Version is "0.9", "1.x" or "2.x" as told by the envelope namespace,
	// refined by the ovf:version attribute when present ("1.0", "2.0"...).
	Version string `json:"version"`
	// Namespace is the envelope's XML namespace URI.
	Namespace string `json:"namespace"`
	// Files lists References/File in document order.
	Files []File `json:"files"`
	// Disks lists the DiskSection's disks in document order, with their file
	// reference resolved.
	Disks []Disk `json:"disks"`
	// Systems lists the virtual systems (nested collections flattened).
	Systems []VirtualSystem `json:"systems,omitempty"`
}

// File is one References/File entry.
type File struct {
	ID   string `json:"id"`
	Href string `json:"href"`
	// Size is the declared size in bytes; -1 when the descriptor omits it.
	Size int64 `json:"size"`
	// Compression is "" (none; "identity" in the descriptor) or "gzip".
	Compression string `json:"compression,omitempty"`
	// ChunkSize is non-zero when the file is split into chunks named
	// ChunkName(Href, 0), ChunkName(Href, 1), ...
	ChunkSize int64 `json:"chunk_size,omitempty"`
}

// Disk is one DiskSection/Disk with its file resolved.
type Disk struct {
	ID string `json:"id"`
	// FileRef is the id of the backing File; empty for a blank disk that
	// the deployer would have to create (Href is then empty too).
	FileRef string `json:"file_ref,omitempty"`
	Href    string `json:"href,omitempty"`
	// Capacity is the virtual size in bytes.
	Capacity int64 `json:"capacity"`
	// PopulatedSize is the descriptor's estimate of used bytes; 0 if absent.
	PopulatedSize int64 `json:"populated_size,omitempty"`
	// Format is a short name derived from FormatURI: "vmdk-streamOptimized",
	// "vmdk-sparse", "vmdk-compressed", "vhd", "vhdx", "qcow2", "raw" or
	// "unknown".
	Format    string `json:"format"`
	FormatURI string `json:"format_uri"`
	// Compression and ChunkSize are copied from the backing File.
	Compression string `json:"compression,omitempty"`
	ChunkSize   int64  `json:"chunk_size,omitempty"`
	// FileSize is the backing File's declared size, -1 if unknown.
	FileSize int64 `json:"file_size"`
	// ParentRef names a parent disk (a delta disk); such disks are refused
	// by SelectDisk.
	ParentRef string `json:"parent_ref,omitempty"`
}

// VirtualSystem is the identifying part of a VirtualSystem element.
type VirtualSystem struct {
	ID            string `json:"id"`
	Name          string `json:"name,omitempty"`
	OSID          string `json:"os_id,omitempty"`
	OSType        string `json:"os_type,omitempty"`
	OSDescription string `json:"os_description,omitempty"`
}

// ChunkName is the name of chunk i of a file split with ovf:chunkSize:
// the href followed by a dot and a nine-digit, zero-padded index.
func ChunkName(href string, i int) string {
	return fmt.Sprintf("%s.%09d", href, i)
}

// SelectDisk picks a disk by id, or by zero-based index when sel is a
// decimal number that is not also a disk id. An empty selector picks the
// first disk. Disks without a backing file or with a parent are refused.
func (e *Envelope) SelectDisk(sel string) (Disk, error) {
	if len(e.Disks) == 0 {
		return Disk{}, fmt.Errorf("%w: the descriptor declares no disks", ErrNoDisk)
	}
	var d Disk
	found := false
	if sel == "" {
		d, found = e.Disks[0], true
	}
	for _, c := range e.Disks {
		if !found && c.ID == sel {
			d, found = c, true
		}
	}
	if !found {
		if i, err := strconv.Atoi(sel); err == nil && i >= 0 && i < len(e.Disks) {
			d, found = e.Disks[i], true
		}
	}
	if !found {
		ids := make([]string, len(e.Disks))
		for i, c := range e.Disks {
			ids[i] = fmt.Sprintf("%d=%q", i, c.ID)
		}
		return Disk{}, fmt.Errorf("%w: %q (available: %s)", ErrNoDisk, sel, strings.Join(ids, ", "))
	}
	if d.ParentRef != "" {
		return Disk{}, fmt.Errorf("%w: disk %q is a delta of parent disk %q", ErrUnsupported, d.ID, d.ParentRef)
	}
	if d.Href == "" {
		return Disk{}, fmt.Errorf("%w: disk %q has no backing file (blank disk)", ErrUnsupported, d.ID)
	}
	return d, nil
}
