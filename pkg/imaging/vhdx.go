package imaging

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"sort"
	"sync"
)

// VHDX ([MS-VHDX]): a file type identifier, two headers (the current one
// has the higher sequence number), two region tables locating the BAT and
// the metadata region, and payload blocks. All integers are little-endian;
// GUIDs are in Microsoft's mixed-endian byte order.
const (
	vhdxHeader1      = 64 << 10
	vhdxHeader2      = 128 << 10
	vhdxRegion1      = 192 << 10
	vhdxRegion2      = 256 << 10
	vhdxRegionSize   = 64 << 10
	vhdxMaxMetadata  = 1 << 20
	vhdxMaxBATBytes  = 64 << 20
	vhdxMinBlockSize = 1 << 20
	vhdxMaxBlockSize = 256 << 20

	vhdxNotPresent      = 0
	vhdxUndefined       = 1
	vhdxZero            = 2
	vhdxUnmapped        = 3
	vhdxUnmappedV095    = 5
	vhdxFullyPresent    = 6
	vhdxPartiallyPresnt = 7
)

var (
	crc32c = crc32.MakeTable(crc32.Castagnoli)

	guidBAT          = msGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	guidMetadata     = msGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	guidFileParams   = msGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	guidDiskSize     = msGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	guidPage83       = msGUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
	guidLogicalSect  = msGUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	guidPhysicalSect = msGUID("CDA348C7-445D-4471-9CC9-E9885251C556")
	guidParentLoc    = msGUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
)

// msGUID converts a textual GUID to its on-disk bytes.
func msGUID(s string) [16]byte {
	var raw [16]byte
	j := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			continue
		}
		var v byte
		for _, c := range s[i : i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'A' && c <= 'F':
				v |= byte(c - 'A' + 10)
			case c >= 'a' && c <= 'f':
				v |= byte(c - 'a' + 10)
			}
		}
		raw[j] = v
		j++
		i++
	}
	var g [16]byte
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	copy(g[8:], raw[8:])
	return g
}

func vhdxChecksumOK(b []byte) bool {
	want := binary.LittleEndian.Uint32(b[4:])
	c := make([]byte, len(b))
	copy(c, b)
	clear(c[4:8])
	return crc32.Checksum(c, crc32c) == want
}

type vhdxStream struct {
	info  Info
	sr    *seqReader
	bs    int64
	chunk int64 // payload blocks per sector bitmap block
	bat   []uint64
	guest int64
	p     *pipeline
	runs  *sync.Pool
}

func openVHDX(r io.Reader, opts Options) (Stream, error) {
	sr := newSeqReader(r, 0, opts.MaxBuffer)
	// Nothing before the region tables is needed but the headers.
	sr.classify = func(off int64) (bool, int64) {
		if off < vhdxRegion2+vhdxRegionSize {
			return false, off + 1
		}
		return true, off + 1<<20
	}
	var hdrs [2][]byte
	for i, off := range []int64{vhdxHeader1, vhdxHeader2} {
		hdrs[i] = make([]byte, 4096)
		if err := sr.readAt(off, hdrs[i]); err != nil {
			return nil, fmt.Errorf("VHDX header %d: %w", i+1, err)
		}
	}
	if _, err := pickVHDXHeader(hdrs[0], hdrs[1]); err != nil {
		return nil, err
	}
	// Region tables: the first valid one.
	var rts [2][]byte
	for i, off := range []int64{vhdxRegion1, vhdxRegion2} {
		rts[i] = make([]byte, vhdxRegionSize)
		if err := sr.readAt(off, rts[i]); err != nil {
			return nil, fmt.Errorf("VHDX region table %d: %w", i+1, err)
		}
	}
	batOff, batLen, metaOff, metaLen, err := parseVHDXRegions(rts[0], rts[1])
	if err != nil {
		return nil, err
	}
	// Until the BAT is known every byte after the region tables may be a
	// payload block: keep what the reads below skip.
	type region struct {
		off, len int64
		meta     bool
	}
	regs := []region{{batOff, batLen, false}, {metaOff, metaLen, true}}
	sort.Slice(regs, func(a, b int) bool { return regs[a].off < regs[b].off })
	var meta, batRaw []byte
	for _, rg := range regs {
		if rg.meta {
			meta = make([]byte, rg.len)
			if err := sr.readAt(rg.off, meta); err != nil {
				return nil, fmt.Errorf("VHDX metadata region: %w", err)
			}
			continue
		}
		if rg.len > vhdxMaxBATBytes || rg.len > opts.MaxBuffer {
			return nil, fmt.Errorf("%w: VHDX BAT region of %d bytes (limit %d)", ErrTooLarge, rg.len, min(vhdxMaxBATBytes, opts.MaxBuffer))
		}
		batRaw = make([]byte, rg.len)
		if err := sr.readAt(rg.off, batRaw); err != nil {
			return nil, fmt.Errorf("VHDX BAT: %w", err)
		}
	}
	bs, size, lss, err := parseVHDXMetadata(meta)
	if err != nil {
		return nil, err
	}
	if err := opts.checkSize("vhdx", size); err != nil {
		return nil, err
	}
	v := &vhdxStream{
		info:  Info{Format: "vhdx", Chain: []string{"vhdx"}, VirtualSize: size},
		sr:    sr,
		bs:    bs,
		chunk: (int64(1) << 23) * lss / bs,
	}
	blocks := (size + bs - 1) / bs
	bat, refs, fixed, err := parseVHDXBAT(batRaw, blocks, bs, v.chunk)
	if err != nil {
		return nil, err
	}
	v.bat = bat
	if fixed {
		v.info.Subformat = "fixed"
	} else {
		v.info.Subformat = "dynamic"
	}
	sr.classify = func(off int64) (bool, int64) { return classifyRefs(refs, off) }
	sr.drop(sr.classify)
	v.runs = &sync.Pool{New: func() any { b := make([]byte, 4<<20); return &b }}
	v.p = newPipeline(v.gen, 0)
	return v, nil
}

// parseVHDXMetadata returns block size, virtual size and logical sector
// size, refusing differencing disks and unknown required items.
func parseVHDXMetadata(m []byte) (bs, size, lss int64, err error) {
	le := binary.LittleEndian
	if string(m[:8]) != "metadata" {
		return 0, 0, 0, fmt.Errorf("%w: VHDX metadata table signature missing", ErrCorrupt)
	}
	n := int(le.Uint16(m[10:]))
	if n > 2047 {
		return 0, 0, 0, fmt.Errorf("%w: VHDX metadata table with %d entries", ErrCorrupt, n)
	}
	item := func(e []byte, want int) ([]byte, error) {
		off, ln := int64(le.Uint32(e[16:])), int64(le.Uint32(e[20:]))
		if ln < int64(want) || off < 64<<10 || off+ln > int64(len(m)) {
			return nil, fmt.Errorf("%w: VHDX metadata item %x at %d+%d", ErrCorrupt, e[:16], off, ln)
		}
		return m[off : off+ln], nil
	}
	var haveBS, haveSize, haveLSS bool
	for i := range n {
		e := m[32+i*32 : 32+(i+1)*32]
		var g [16]byte
		copy(g[:], e[:16])
		flags := le.Uint32(e[24:])
		switch g {
		case guidFileParams:
			b, err := item(e, 8)
			if err != nil {
				return 0, 0, 0, err
			}
			bs = int64(le.Uint32(b))
			if le.Uint32(b[4:])&2 != 0 {
				return 0, 0, 0, fmt.Errorf("%w: VHDX differencing disk (HasParent): it needs a parent image, only self-contained images are accepted", ErrHostile)
			}
			haveBS = true
		case guidDiskSize:
			b, err := item(e, 8)
			if err != nil {
				return 0, 0, 0, err
			}
			size = int64(le.Uint64(b))
			haveSize = true
		case guidLogicalSect:
			b, err := item(e, 4)
			if err != nil {
				return 0, 0, 0, err
			}
			lss = int64(le.Uint32(b))
			haveLSS = true
		case guidParentLoc:
			return 0, 0, 0, fmt.Errorf("%w: VHDX carries a parent locator: differencing disks are refused", ErrHostile)
		case guidPage83, guidPhysicalSect:
		default:
			if flags&4 != 0 {
				return 0, 0, 0, fmt.Errorf("%w: VHDX requires unknown metadata item %x", ErrUnsupported, g)
			}
		}
	}
	if !haveBS || !haveSize || !haveLSS {
		return 0, 0, 0, fmt.Errorf("%w: VHDX metadata lacks block size, disk size or sector size", ErrCorrupt)
	}
	if bs < vhdxMinBlockSize || bs > vhdxMaxBlockSize || bits.OnesCount64(uint64(bs)) != 1 {
		return 0, 0, 0, fmt.Errorf("%w: VHDX block size %d", ErrCorrupt, bs)
	}
	if lss != 512 && lss != 4096 {
		return 0, 0, 0, fmt.Errorf("%w: VHDX logical sector size %d", ErrCorrupt, lss)
	}
	if size < 0 || size%lss != 0 {
		return 0, 0, 0, fmt.Errorf("%w: VHDX virtual size %d", ErrCorrupt, size)
	}
	return bs, size, lss, nil
}

func (v *vhdxStream) Info() Info            { return v.info }
func (v *vhdxStream) Next() (Extent, error) { return v.p.next() }

func (v *vhdxStream) gen() (*item, error) {
	size := v.info.VirtualSize
	if v.guest >= size {
		return nil, io.EOF
	}
	off := v.guest
	blk := off / v.bs
	in := off % v.bs
	e := v.bat[blk]
	if e&7 != vhdxFullyPresent {
		kind := KindHole
		if e&7 == vhdxZero {
			kind = KindZero
		}
		n := min(v.bs-in, size-off)
		for b := blk + 1; b < int64(len(v.bat)) && v.bat[b]&7 == e&7; b++ {
			n += min(v.bs, size-(off+n))
		}
		v.guest += n
		return &item{ext: Extent{Offset: off, Length: n, Kind: kind}}, nil
	}
	n := min(v.bs-in, size-off, 4<<20)
	host := int64(e>>20)<<20 + in
	buf := v.runs.Get().(*[]byte)
	data := (*buf)[:n]
	if err := v.sr.readAt(host, data); err != nil {
		v.runs.Put(buf)
		return nil, fmt.Errorf("VHDX block %d: %w", blk, err)
	}
	v.guest += n
	return &item{ext: Extent{Offset: off, Length: n, Kind: KindData, Data: data}, pool: v.runs, bp: buf}, nil
}
