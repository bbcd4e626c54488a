package imaging

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"sync"
)

// VMDK sparse extents (VMware "Virtual Disk Format 5.0"): a 512-byte
// little-endian header, an embedded descriptor, grain directory and grain
// tables of 32-bit sector offsets, and grains. streamOptimized adds
// compressed grains behind markers and puts the tables after the grains.
const (
	vmdkFlagNewline    = 1 << 0
	vmdkFlagRGD        = 1 << 1
	vmdkFlagZeroGrain  = 1 << 2
	vmdkFlagCompressed = 1 << 16
	vmdkFlagMarkers    = 1 << 17

	vmdkGDAtEnd = 0xffffffffffffffff

	vmdkMarkerEOS    = 0
	vmdkMarkerGT     = 1
	vmdkMarkerGD     = 2
	vmdkMarkerFooter = 3

	vmdkMaxGrainSectors = 4096 // 2 MiB
	vmdkMaxDescriptor   = 1 << 20
)

type vmdkHeader struct {
	version     uint32
	flags       uint32
	capacity    int64 // sectors
	grain       int64 // sectors
	descOff     int64 // sectors
	descSize    int64 // sectors
	gtes        int64
	rgdOff      int64
	gdOff       uint64
	overhead    int64
	compressAlg uint16
}

func parseVMDKHeader(b []byte) (vmdkHeader, error) {
	le := binary.LittleEndian
	h := vmdkHeader{
		version:     le.Uint32(b[4:]),
		flags:       le.Uint32(b[8:]),
		capacity:    int64(le.Uint64(b[12:])),
		grain:       int64(le.Uint64(b[20:])),
		descOff:     int64(le.Uint64(b[28:])),
		descSize:    int64(le.Uint64(b[36:])),
		gtes:        int64(le.Uint32(b[44:])),
		rgdOff:      int64(le.Uint64(b[48:])),
		gdOff:       le.Uint64(b[56:]),
		overhead:    int64(le.Uint64(b[64:])),
		compressAlg: le.Uint16(b[77:]),
	}
	if string(b[:4]) != "KDMV" {
		return h, fmt.Errorf("%w: VMDK magic missing", ErrCorrupt)
	}
	if h.version < 1 || h.version > 3 {
		return h, fmt.Errorf("%w: VMDK sparse version %d", ErrUnsupported, h.version)
	}
	if h.grain < 1 || h.grain > vmdkMaxGrainSectors || bits.OnesCount64(uint64(h.grain)) != 1 {
		return h, fmt.Errorf("%w: VMDK grain size of %d sectors", ErrCorrupt, h.grain)
	}
	if h.gtes < 1 || h.gtes > 1<<16 {
		return h, fmt.Errorf("%w: VMDK %d entries per grain table", ErrCorrupt, h.gtes)
	}
	const maxSector = 1 << 44 // 8 PiB: keeps sector*512 far from overflow
	if h.descOff < 0 || h.descOff > maxSector || h.descSize < 0 || h.descSize > maxSector ||
		h.overhead < 0 || h.overhead > maxSector || h.rgdOff < 0 || (h.gdOff != vmdkGDAtEnd && h.gdOff > maxSector) {
		return h, fmt.Errorf("%w: VMDK header offsets out of range", ErrCorrupt)
	}
	if h.capacity < 0 || h.capacity > 1<<50 {
		return h, fmt.Errorf("%w: VMDK capacity of %d sectors", ErrTooLarge, h.capacity)
	}
	if h.flags&vmdkFlagCompressed != 0 && h.compressAlg != 1 {
		return h, fmt.Errorf("%w: VMDK compression algorithm %d", ErrUnsupported, h.compressAlg)
	}
	return h, nil
}

func openVMDK(r io.Reader, opts Options) (Stream, error) {
	sr := newSeqReader(r, 0, opts.MaxBuffer)
	hb := make([]byte, 512)
	if err := sr.readAt(0, hb); err != nil {
		return nil, fmt.Errorf("VMDK header: %w", err)
	}
	h, err := parseVMDKHeader(hb)
	if err != nil {
		return nil, err
	}
	size := h.capacity * 512
	if err := opts.checkSize("vmdk", size); err != nil {
		return nil, err
	}
	if h.descOff == 0 || h.descSize <= 0 || h.descSize > vmdkMaxDescriptor/512 {
		return nil, fmt.Errorf("%w: VMDK without an embedded descriptor (descriptor offset %d, %d sectors)", ErrHostile, h.descOff, h.descSize)
	}
	db := make([]byte, h.descSize*512)
	if err := sr.readAt(h.descOff*512, db); err != nil {
		return nil, fmt.Errorf("VMDK descriptor: %w", err)
	}
	d, err := parseVMDKDescriptor(db)
	if err != nil {
		return nil, err
	}
	stream := h.flags&vmdkFlagMarkers != 0
	if stream != (d.createType == "streamOptimized") {
		return nil, fmt.Errorf("%w: VMDK createType %s disagrees with the header flags %#x", ErrCorrupt, d.createType, h.flags)
	}
	info := Info{Format: "vmdk", Subformat: d.createType, Chain: []string{"vmdk"}, VirtualSize: size}
	if stream {
		if h.flags&vmdkFlagCompressed == 0 {
			return nil, fmt.Errorf("%w: streamOptimized VMDK without compressed grains", ErrUnsupported)
		}
		v := &vmdkStream{info: info, sr: sr, h: h, pos: h.overhead * 512}
		if v.pos < sr.pos {
			v.pos = (sr.pos + 511) &^ 511
		}
		v.p = newPipeline(v.gen, int(h.grain*512))
		// Nothing skipped between markers is ever needed.
		sr.classify = func(off int64) (bool, int64) { return false, off + 64<<20 }
		return v, nil
	}
	if h.flags&vmdkFlagCompressed != 0 {
		return nil, fmt.Errorf("%w: compressed monolithicSparse VMDK without markers", ErrUnsupported)
	}
	return openVMDKSparse(sr, h, info, opts)
}

// vmdkStream decodes streamOptimized VMDK from its markers, front to back:
// every grain marker carries its LBA, so no table is needed. Grains must
// come in increasing LBA order (VMware and qemu write them so); the tables
// after them are skipped.
type vmdkStream struct {
	info  Info
	sr    *seqReader
	h     vmdkHeader
	pos   int64 // next marker
	guest int64 // everything below has been emitted
	eos   bool
	m     [512]byte // the marker sector being processed
	have  bool
	p     *pipeline
}

func (v *vmdkStream) Info() Info            { return v.info }
func (v *vmdkStream) Next() (Extent, error) { return v.p.next() }

func (v *vmdkStream) gen() (*item, error) {
	le := binary.LittleEndian
	size := v.info.VirtualSize
	gbytes := v.h.grain * 512
	for !v.eos {
		if !v.have {
			if err := v.sr.readAt(v.pos, v.m[:]); err != nil {
				return nil, fmt.Errorf("VMDK marker at %d: %w", v.pos, err)
			}
			v.have = true
		}
		m := v.m[:]
		val := le.Uint64(m)
		sz := int64(le.Uint32(m[8:]))
		if sz == 0 {
			v.have = false
			typ := le.Uint32(m[12:])
			switch typ {
			case vmdkMarkerEOS:
				v.eos = true
				continue
			case vmdkMarkerGT, vmdkMarkerGD, vmdkMarkerFooter:
				if val > 1<<24 {
					return nil, fmt.Errorf("%w: VMDK metadata marker of %d sectors", ErrCorrupt, val)
				}
				v.pos += 512 + int64(val)*512
				continue
			default:
				return nil, fmt.Errorf("%w: VMDK marker type %d at %d", ErrCorrupt, typ, v.pos)
			}
		}
		lba := int64(val)
		if sz > gbytes*2+4096 {
			return nil, fmt.Errorf("%w: VMDK grain at %d claims %d compressed bytes", ErrCorrupt, v.pos, sz)
		}
		if lba%v.h.grain != 0 || lba >= v.h.capacity {
			return nil, fmt.Errorf("%w: VMDK grain marker at %d for sector %d", ErrCorrupt, v.pos, lba)
		}
		off := lba * 512
		if off < v.guest {
			return nil, fmt.Errorf("%w: VMDK grain for sector %d comes after sector %d: out-of-order streamOptimized grains can't be streamed", ErrUnsupported, lba, v.guest/512)
		}
		if off > v.guest {
			it := &item{ext: Extent{Offset: v.guest, Length: off - v.guest, Kind: KindHole}}
			v.guest = off
			return it, nil // the marker is kept for the next call
		}
		v.have = false
		src := make([]byte, sz)
		copy(src, m[12:])
		if 12+sz > 512 {
			if err := v.sr.readAt(v.pos+512, src[500:]); err != nil {
				return nil, fmt.Errorf("VMDK grain at %d: %w", v.pos, err)
			}
		}
		v.pos += (12 + sz + 511) &^ 511
		n := min(gbytes, size-off)
		v.guest = off + n
		return v.p.async(off, n, func(dst []byte) error {
			if err := inflateZlib(dst[:gbytes:gbytes], int(n), src); err != nil {
				return fmt.Errorf("VMDK grain for sector %d: %w", lba, err)
			}
			return nil
		}), nil
	}
	if v.guest < size {
		it := &item{ext: Extent{Offset: v.guest, Length: size - v.guest, Kind: KindHole}}
		v.guest = size
		return it, nil
	}
	return nil, io.EOF
}

// vmdkSparse reads monolithicSparse VMDK through its grain directory.
type vmdkSparse struct {
	info  Info
	sr    *seqReader
	grain int64    // bytes
	gt    []uint32 // every grain's sector offset, in guest order
	zero  bool
	guest int64
	p     *pipeline
	runs  *sync.Pool
}

func openVMDKSparse(sr *seqReader, h vmdkHeader, info Info, opts Options) (Stream, error) {
	le := binary.LittleEndian
	if h.gdOff == vmdkGDAtEnd || h.gdOff == 0 {
		return nil, fmt.Errorf("%w: monolithicSparse VMDK without a grain directory offset", ErrCorrupt)
	}
	grains := (h.capacity + h.grain - 1) / h.grain
	nGT := (grains + h.gtes - 1) / h.gtes
	if grains*4 > opts.MaxBuffer || grains*4 > 1<<30 {
		return nil, fmt.Errorf("%w: VMDK grain tables of %d entries exceed the buffer bound of %d bytes", ErrBufferLimit, grains, opts.MaxBuffer)
	}
	gd := make([]byte, nGT*4)
	if err := sr.readAt(int64(h.gdOff)*512, gd); err != nil {
		return nil, fmt.Errorf("VMDK grain directory: %w", err)
	}
	type gtRef struct{ idx, off int64 }
	gts := make([]gtRef, 0, nGT)
	for i := range nGT {
		if o := int64(le.Uint32(gd[i*4:])); o != 0 {
			gts = append(gts, gtRef{i, o * 512})
		}
	}
	// Read the grain tables in file order.
	sort.Slice(gts, func(a, b int) bool { return gts[a].off < gts[b].off })
	v := &vmdkSparse{info: info, sr: sr, grain: h.grain * 512, gt: make([]uint32, grains), zero: h.flags&vmdkFlagZeroGrain != 0}
	raw := make([]byte, h.gtes*4)
	for _, g := range gts {
		if err := sr.readAt(g.off, raw); err != nil {
			return nil, fmt.Errorf("VMDK grain table %d: %w", g.idx, err)
		}
		for j := range h.gtes {
			k := g.idx*h.gtes + j
			if k >= grains {
				break
			}
			v.gt[k] = le.Uint32(raw[j*4:])
		}
	}
	var refs []rng
	for k, e := range v.gt {
		switch {
		case e == 0:
		case e == 1:
			if !v.zero {
				return nil, fmt.Errorf("%w: VMDK grain table entry 1 for grain %d without the zeroed-grain flag", ErrCorrupt, k)
			}
		default:
			refs = append(refs, rng{int64(e) * 512, int64(e)*512 + v.grain})
		}
	}
	sort.Slice(refs, func(a, b int) bool { return refs[a].off < refs[b].off })
	sr.classify = func(off int64) (bool, int64) { return classifyRefs(refs, off) }
	sr.drop(sr.classify)
	v.runs = &sync.Pool{New: func() any { b := make([]byte, 4<<20); return &b }}
	v.p = newPipeline(v.gen, 0)
	return v, nil
}

func (v *vmdkSparse) Info() Info            { return v.info }
func (v *vmdkSparse) Next() (Extent, error) { return v.p.next() }

func (v *vmdkSparse) gen() (*item, error) {
	size := v.info.VirtualSize
	if v.guest >= size {
		return nil, io.EOF
	}
	off := v.guest
	k := off / v.grain
	e := v.gt[k]
	kind := KindData
	switch e {
	case 0:
		kind = KindHole
	case 1:
		kind = KindZero
	}
	n := min(v.grain, size-off)
	host := int64(e) * 512
	k++
	for k < int64(len(v.gt)) && n < 4<<20 && off+n < size {
		f := v.gt[k]
		fk := KindData
		switch f {
		case 0:
			fk = KindHole
		case 1:
			fk = KindZero
		}
		if fk != kind || (kind == KindData && int64(f)*512 != host+n) {
			break
		}
		n += min(v.grain, size-(off+n))
		k++
	}
	v.guest = off + n
	if kind != KindData {
		return &item{ext: Extent{Offset: off, Length: n, Kind: kind}}, nil
	}
	buf := v.runs.Get().(*[]byte)
	if int64(len(*buf)) < n {
		b := make([]byte, n)
		buf = &b
	}
	data := (*buf)[:n]
	if err := v.sr.readAt(host, data); err != nil {
		return nil, fmt.Errorf("VMDK grain at %d: %w", host, err)
	}
	return &item{ext: Extent{Offset: off, Length: n, Kind: KindData, Data: data}, pool: v.runs, bp: buf}, nil
}
