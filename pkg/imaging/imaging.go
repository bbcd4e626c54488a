// Package imaging turns a disk image, read strictly front to back from an
// io.Reader, into the raw disk it describes: a sequence of extents (data,
// zeros, holes) in increasing offset order plus the virtual size. It never
// seeks and never stages the image in a temporary file. Output is byte for
// byte what `qemu-img convert -O raw` produces.
//
// Supported: OVA (tar) and OVF packages, VMDK streamOptimized and
// monolithicSparse, VHD fixed and dynamic, VHDX, qcow2 v2/v3, raw, and
// gzip/zstd/xz/bzip2 around any of them. Hostile images are refused with an
// error before the first extent is returned (docs/imaging.md lists what and
// why). Write puts a Stream on a block device or file.
package imaging

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// Kind says what an extent holds.
type Kind uint8

const (
	// KindData carries bytes in Extent.Data.
	KindData Kind = iota
	// KindZero is a range the image explicitly marks as zeros (a qcow2 zero
	// cluster, a VMDK grain table entry of 1, ...).
	KindZero
	// KindHole is a range the image leaves unallocated; it reads as zeros.
	KindHole
)

func (k Kind) String() string {
	switch k {
	case KindData:
		return "data"
	case KindZero:
		return "zero"
	case KindHole:
		return "hole"
	}
	return "unknown"
}

// Extent is one contiguous range of the raw disk.
type Extent struct {
	Offset int64
	Length int64
	Kind   Kind
	// Data holds exactly Length bytes when Kind is KindData and is nil
	// otherwise. It is valid only until the next call to Stream.Next.
	Data []byte
	// buf, when set, lets Write keep Data past the next Next (retain,
	// then release) instead of copying it.
	buf *refBuf
}

// refBuf is a pooled buffer shared by reference count.
type refBuf struct {
	b    *[]byte
	pool *sync.Pool
	refs atomic.Int32
}

func (r *refBuf) retain(n int32) { r.refs.Add(n) }

func (r *refBuf) release() {
	if r.refs.Add(-1) == 0 {
		*r.b = (*r.b)[:cap(*r.b)]
		r.pool.Put(r.b)
	}
}

// Info describes an opened image.
type Info struct {
	// Format is the innermost disk format: "raw", "qcow2", "vmdk", "vhd",
	// "vhdx". An OVA or OVF package shows in Chain and Package.
	Format string `json:"format"`
	// Subformat refines Format: "streamOptimized", "monolithicSparse",
	// "dynamic", "fixed", "v2", "v3", ...
	Subformat string `json:"subformat,omitempty"`
	// Chain lists every layer, outermost first: ["zstd", "qcow2"],
	// ["ova", "gzip", "vmdk"].
	Chain []string `json:"chain"`
	// VirtualSize is the size of the raw disk in bytes.
	VirtualSize int64 `json:"virtual_size"`
	// Package is set for OVA/OVF input.
	Package *PackageInfo `json:"package,omitempty"`
}

// PackageInfo describes an OVF package (OVA or descriptor directory).
type PackageInfo struct {
	OVFVersion  string        `json:"ovf_version"`
	Disks       []PackageDisk `json:"disks"`
	Selected    string        `json:"selected_disk"`
	Manifest    string        `json:"manifest"` // "none", "pending", "verified", "mismatch"
	Certificate string        `json:"certificate,omitempty"`
}

// PackageDisk is one disk of an OVF DiskSection.
type PackageDisk struct {
	ID          string `json:"id"`
	File        string `json:"file"`
	Format      string `json:"format"`
	Capacity    int64  `json:"capacity"`
	Compression string `json:"compression,omitempty"`
	ChunkSize   int64  `json:"chunk_size,omitempty"`
}

// Stream is a raw disk decoded from an image.
//
// Next returns extents in strictly increasing, non-overlapping offset
// order; ranges between extents are holes. After the last extent it
// returns io.EOF. Any other error is final. Every integrity check the
// image allows (truncation, trailing digests) is reported by Next before
// io.EOF, never swallowed.
type Stream interface {
	Info() Info
	Next() (Extent, error)
}

// Options bound what Open accepts.
type Options struct {
	// Allowed lists the formats (as in Info.Format and the compression
	// names) that may appear in the chain; empty allows all.
	Allowed []string
	// MaxVirtualSize refuses images declaring a larger disk.
	// Zero means DefaultMaxVirtualSize.
	MaxVirtualSize int64
	// MaxBuffer bounds the out-of-order data a format may hold in memory
	// while it waits for the metadata that maps it. Zero means
	// DefaultMaxBuffer.
	MaxBuffer int64
	// Disk selects the disk of an OVF package by id or zero-based index;
	// empty selects the first.
	Disk string
	// Format forces how an input that matches no magic is read: "" or
	// "raw" reads it as raw (qemu-img's autodetection), "vhd" (alias
	// "vpc") as a fixed VHD whose only footer is at the end, as
	// `qemu-img -f vpc` does. Compression layers are still peeled first.
	Format string
}

const (
	DefaultMaxVirtualSize int64 = 64 << 40
	DefaultMaxBuffer      int64 = 256 << 20
)

// Sentinel errors; concrete errors wrap one of them with details.
var (
	ErrUnknownFormat = errors.New("unknown image format")
	ErrNotAllowed    = errors.New("image format not allowed")
	ErrHostile       = errors.New("image refused")
	ErrCorrupt       = errors.New("corrupt image")
	ErrTruncated     = errors.New("truncated image")
	ErrTooLarge      = errors.New("image too large")
	ErrBufferLimit   = errors.New("image needs more buffering than allowed")
	ErrUnsupported   = errors.New("unsupported image feature")
)

// readFull is io.ReadFull that reports a short read as ErrTruncated.
func readFull(r io.Reader, b []byte) error {
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return ErrTruncated
		}
		return err
	}
	return nil
}
