package imaging

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"sync"
)

// VHD (Virtual PC / Hyper-V v1): a 512-byte footer at the end of the file,
// with a copy at offset 0 for dynamic and differencing disks, a dynamic
// header, and a BAT of 32-bit sector offsets, each block preceded by a
// sector bitmap.
const (
	vhdFixed        = 2
	vhdDynamic      = 3
	vhdDifferencing = 4

	vhdMaxGeometry = 65535 * 16 * 255
	vhdMaxSectors  = 0xff000000
	vhdMaxBAT      = 32 << 20
)

type vhdFooter struct {
	diskType    uint32
	dataOffset  int64
	virtualSize int64
	creator     string
}

// parseVHDFooter applies qemu's block/vpc.c rules: the size is the CHS
// geometry product unless the creator is known to use current_size
// (Hyper-V "win ", qemu with force_size "qem2", Disk2vhd "d2v ",
// XenConverter "CTXS", XenServer "tap\0") or the geometry is the maximum,
// in which case it is current_size.
func parseVHDFooter(b []byte, opts Options) (vhdFooter, error) {
	be := binary.BigEndian
	if string(b[:8]) != "conectix" {
		return vhdFooter{}, fmt.Errorf("%w: VHD footer cookie missing", ErrCorrupt)
	}
	f := vhdFooter{
		diskType:   be.Uint32(b[60:]),
		dataOffset: int64(be.Uint64(b[16:])),
		creator:    string(b[28:32]),
	}
	sectors := int64(be.Uint16(b[56:])) * int64(b[58]) * int64(b[59])
	switch f.creator {
	case "win ", "qem2", "d2v ", "CTXS", "tap\x00":
		sectors = int64(be.Uint64(b[48:]) / 512)
	default:
		if sectors == vhdMaxGeometry {
			sectors = int64(be.Uint64(b[48:]) / 512)
		}
	}
	if sectors < 0 || sectors > vhdMaxSectors {
		return f, fmt.Errorf("%w: VHD of %d sectors is over the format's 2040 GiB", ErrTooLarge, sectors)
	}
	f.virtualSize = sectors * 512
	switch f.diskType {
	case vhdFixed, vhdDynamic:
	case vhdDifferencing:
		return f, fmt.Errorf("%w: VHD differencing disk: it needs a parent image, only self-contained images are accepted", ErrHostile)
	default:
		return f, fmt.Errorf("%w: VHD disk type %d", ErrUnsupported, f.diskType)
	}
	if err := opts.checkSize("vhd", f.virtualSize); err != nil {
		return f, err
	}
	return f, nil
}

type vhdStream struct {
	info   Info
	sr     *seqReader
	bs     int64
	bitmap int64
	bat    []uint32
	refs   []rng // data ranges of allocated blocks, sorted by file offset
	guest  int64
	p      *pipeline
	runs   *sync.Pool
}

func openVHD(r io.Reader, opts Options) (Stream, error) {
	sr := newSeqReader(r, 0, opts.MaxBuffer)
	foot := make([]byte, 512)
	if err := sr.readAt(0, foot); err != nil {
		return nil, fmt.Errorf("VHD footer: %w", err)
	}
	f, err := parseVHDFooter(foot, opts)
	if err != nil {
		return nil, err
	}
	if f.diskType == vhdFixed {
		return nil, fmt.Errorf("%w: fixed VHD with a footer at offset 0", ErrUnsupported)
	}
	be := binary.BigEndian
	if f.dataOffset < 512 || f.dataOffset > 1<<30 {
		return nil, fmt.Errorf("%w: VHD dynamic header offset %d", ErrCorrupt, f.dataOffset)
	}
	dh := make([]byte, 1024)
	if err := sr.readAt(f.dataOffset, dh); err != nil {
		return nil, fmt.Errorf("VHD dynamic header: %w", err)
	}
	if string(dh[:8]) != "cxsparse" {
		return nil, fmt.Errorf("%w: VHD dynamic header cookie missing", ErrCorrupt)
	}
	batOff := int64(be.Uint64(dh[16:]))
	entries := int64(be.Uint32(dh[28:]))
	bs := int64(be.Uint32(dh[32:]))
	if bs < 512 || bits.OnesCount64(uint64(bs)) != 1 {
		return nil, fmt.Errorf("%w: VHD block size %d", ErrCorrupt, bs)
	}
	if entries*bs < f.virtualSize {
		return nil, fmt.Errorf("%w: VHD block table of %d entries is too small for %d bytes", ErrCorrupt, entries, f.virtualSize)
	}
	need := (f.virtualSize + bs - 1) / bs
	if need*4 > vhdMaxBAT {
		return nil, fmt.Errorf("%w: VHD block table of %d entries", ErrTooLarge, need)
	}
	if batOff < f.dataOffset+1024 {
		return nil, fmt.Errorf("%w: VHD block table offset %d", ErrCorrupt, batOff)
	}
	raw := make([]byte, need*4)
	if err := sr.readAt(batOff, raw); err != nil {
		return nil, fmt.Errorf("VHD block table: %w", err)
	}
	v := &vhdStream{
		info:   Info{Format: "vhd", Subformat: "dynamic", Chain: []string{"vhd"}, VirtualSize: f.virtualSize},
		sr:     sr,
		bs:     bs,
		bitmap: ((bs/512)/8 + 511) &^ 511,
		bat:    make([]uint32, need),
	}
	for i := range v.bat {
		e := be.Uint32(raw[i*4:])
		v.bat[i] = e
		if e != 0xffffffff {
			start := int64(e)*512 + v.bitmap
			v.refs = append(v.refs, rng{start, start + bs})
		}
	}
	sort.Slice(v.refs, func(a, b int) bool { return v.refs[a].off < v.refs[b].off })
	sr.classify = func(off int64) (bool, int64) { return classifyRefs(v.refs, off) }
	v.runs = &sync.Pool{New: func() any { b := make([]byte, 4<<20); return &b }}
	v.p = newPipeline(v.gen, 0)
	return v, nil
}

// classifyRefs keeps bytes inside one of the sorted ranges and discards the
// rest up to the next range.
func classifyRefs(refs []rng, off int64) (bool, int64) {
	i := sort.Search(len(refs), func(i int) bool { return refs[i].end > off })
	if i < len(refs) && refs[i].off <= off {
		return true, refs[i].end
	}
	if i < len(refs) {
		return false, refs[i].off
	}
	return false, off + 64<<20
}

func (v *vhdStream) Info() Info            { return v.info }
func (v *vhdStream) Next() (Extent, error) { return v.p.next() }

func (v *vhdStream) gen() (*item, error) {
	size := v.info.VirtualSize
	if v.guest >= size {
		return nil, io.EOF
	}
	blk := v.guest / v.bs
	in := v.guest % v.bs
	n := min(v.bs-in, size-v.guest, 4<<20)
	off := v.guest
	e := v.bat[blk]
	if e == 0xffffffff {
		// Merge consecutive unallocated blocks.
		n = min(v.bs-in, size-v.guest)
		for b := blk + 1; b < int64(len(v.bat)) && v.bat[b] == 0xffffffff; b++ {
			n += min(v.bs, size-(off+n))
		}
		v.guest += n
		return &item{ext: Extent{Offset: off, Length: n, Kind: KindHole}}, nil
	}
	host := int64(e)*512 + v.bitmap + in
	buf := v.runs.Get().(*[]byte)
	data := (*buf)[:n]
	if err := v.sr.readAt(host, data); err != nil {
		v.runs.Put(buf)
		return nil, fmt.Errorf("VHD block %d: %w", blk, err)
	}
	v.guest += n
	return &item{ext: Extent{Offset: off, Length: n, Kind: KindData, Data: data}, pool: v.runs, bp: buf}, nil
}

// openFixedVHD reads a fixed VHD, whose only footer is its last 512 bytes:
// the data before it is streamed as raw and the footer checked at the end.
func openFixedVHD(r io.Reader, size int64, opts Options) (Stream, error) {
	vsize := int64(-1)
	if size >= 0 {
		if size < 512 {
			return nil, fmt.Errorf("%w: fixed VHD shorter than its footer", ErrTruncated)
		}
		vsize = size - 512
		if err := opts.checkSize("vhd", vsize); err != nil {
			return nil, err
		}
	}
	s := &rawStream{
		info:     Info{Format: "vhd", Subformat: "fixed", Chain: []string{"vhd"}, VirtualSize: vsize},
		r:        r,
		holdback: 512,
	}
	s.atEnd = func(tail []byte, n int64) error {
		f, err := parseVHDFooter(tail, opts)
		if err != nil {
			return fmt.Errorf("fixed VHD footer: %w", err)
		}
		if f.diskType != vhdFixed {
			return fmt.Errorf("%w: VHD footer at the end says disk type %d, not fixed", ErrCorrupt, f.diskType)
		}
		if f.virtualSize != n {
			return fmt.Errorf("%w: fixed VHD footer declares %d bytes but %d bytes of data precede it", ErrCorrupt, f.virtualSize, n)
		}
		return nil
	}
	return &sizeLimited{Stream: s, max: opts.MaxVirtualSize}, nil
}
