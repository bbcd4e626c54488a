package imaging

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
)

// The VHDX parsers below read bytes the caller has already fetched and
// keep no state; openVHDX only reads (docs: MS-VHDX).

// pickVHDXHeader chooses the valid header with the higher sequence
// number (h1, h2: the 4 KiB at 64 KiB and 128 KiB) and refuses versions
// other than 1 and a log that still needs replaying.
func pickVHDXHeader(h1, h2 []byte) ([]byte, error) {
	le := binary.LittleEndian
	valid := func(b []byte) bool { return len(b) >= 4096 && string(b[:4]) == "head" && vhdxChecksumOK(b) }
	var h []byte
	switch a, b := valid(h1), valid(h2); {
	case !a && !b:
		return nil, fmt.Errorf("%w: VHDX has no valid header", ErrCorrupt)
	case !b:
		h = h1
	case !a:
		h = h2
	case le.Uint64(h2[8:]) > le.Uint64(h1[8:]):
		h = h2
	default:
		h = h1
	}
	if v := le.Uint16(h[66:]); v != 1 {
		return nil, fmt.Errorf("%w: VHDX version %d", ErrUnsupported, v)
	}
	if !isZero(h[48:64]) {
		return nil, fmt.Errorf("%w: VHDX log is not empty (log GUID set): the image was not closed cleanly; replay the log first, e.g. by opening it read-write once with `qemu-img check -r all` or in Hyper-V", ErrUnsupported)
	}
	return h, nil
}

// parseVHDXRegions reads the first valid region table (rt1, rt2: the
// 64 KiB at 192 KiB and 256 KiB): where the BAT and the metadata region
// are, refusing unknown required regions and regions that overlap the
// headers.
func parseVHDXRegions(rt1, rt2 []byte) (batOff, batLen, metaOff, metaLen int64, err error) {
	le := binary.LittleEndian
	var rt []byte
	for _, b := range [][]byte{rt1, rt2} {
		if rt == nil && len(b) >= vhdxRegionSize && string(b[:4]) == "regi" && vhdxChecksumOK(b) {
			rt = b
		}
	}
	if rt == nil {
		return 0, 0, 0, 0, fmt.Errorf("%w: VHDX has no valid region table", ErrCorrupt)
	}
	n := int(le.Uint32(rt[8:]))
	if n > 2047 {
		return 0, 0, 0, 0, fmt.Errorf("%w: VHDX region table with %d entries", ErrCorrupt, n)
	}
	for i := range n {
		e := rt[16+i*32 : 16+(i+1)*32]
		off, ln, req := int64(le.Uint64(e[16:])), int64(le.Uint32(e[24:])), le.Uint32(e[28:])&1
		switch {
		case bytes.Equal(e[:16], guidBAT[:]):
			batOff, batLen = off, ln
		case bytes.Equal(e[:16], guidMetadata[:]):
			metaOff, metaLen = off, ln
		case req != 0:
			return 0, 0, 0, 0, fmt.Errorf("%w: VHDX requires an unknown region %x", ErrUnsupported, e[:16])
		}
	}
	if batOff < vhdxRegion2+vhdxRegionSize || metaOff < vhdxRegion2+vhdxRegionSize || metaLen < 64<<10 || metaLen > vhdxMaxMetadata {
		return 0, 0, 0, 0, fmt.Errorf("%w: VHDX regions: BAT at %d, metadata at %d (%d bytes)", ErrCorrupt, batOff, metaOff, metaLen)
	}
	return batOff, batLen, metaOff, metaLen, nil
}

// parseVHDXBAT reads the BAT entries of a disk of blocks payload blocks
// of bs bytes (a sector bitmap entry after every chunk of them): the
// entries, the file ranges of the present blocks (sorted, refused when
// they overlap), and whether every block is present (a fixed disk).
func parseVHDXBAT(raw []byte, blocks, bs, chunk int64) (bat []uint64, refs []rng, fixed bool, err error) {
	le := binary.LittleEndian
	entries := blocks
	if blocks > 0 {
		entries += (blocks - 1) / chunk
	}
	if entries*8 > int64(len(raw)) {
		return nil, nil, false, fmt.Errorf("%w: VHDX BAT of %d bytes holds fewer than the %d entries the disk needs", ErrCorrupt, len(raw), entries)
	}
	bat = make([]uint64, blocks)
	fixed = true
	for b := range blocks {
		e := le.Uint64(raw[(b+b/chunk)*8:])
		bat[b] = e
		switch e & 7 {
		case vhdxNotPresent, vhdxUndefined, vhdxZero, vhdxUnmapped, vhdxUnmappedV095:
			fixed = false
		case vhdxFullyPresent:
			off := int64(e>>20) << 20
			if off < 1<<20 {
				return nil, nil, false, fmt.Errorf("%w: VHDX block %d at file offset %d", ErrCorrupt, b, off)
			}
			refs = append(refs, rng{off, off + bs})
		case vhdxPartiallyPresnt:
			return nil, nil, false, fmt.Errorf("%w: VHDX block %d is partially present, which only a differencing disk may use", ErrHostile, b)
		default:
			return nil, nil, false, fmt.Errorf("%w: VHDX block %d in state %d", ErrCorrupt, b, e&7)
		}
	}
	sort.Slice(refs, func(a, b int) bool { return refs[a].off < refs[b].off })
	for i := 1; i < len(refs); i++ {
		if refs[i].off < refs[i-1].end {
			return nil, nil, false, fmt.Errorf("%w: VHDX payload blocks overlap at file offset %d", ErrCorrupt, refs[i].off)
		}
	}
	return bat, refs, fixed, nil
}
