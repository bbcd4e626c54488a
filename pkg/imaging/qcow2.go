package imaging

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"sync"
)

// qcow2 header fields and entry bits (docs/interop/qcow2.txt in QEMU).
const (
	qcowOflagCopied     = 1 << 63
	qcowOflagCompressed = 1 << 62
	qcowOflagZero       = 1
	qcowOffsetMask      = 0x00fffffffffffe00

	qcowIncompatDirty    = 1 << 0
	qcowIncompatCorrupt  = 1 << 1
	qcowIncompatDataFile = 1 << 2
	qcowIncompatCompress = 1 << 3
	qcowIncompatExtL2    = 1 << 4

	qcowExtEnd          = 0
	qcowExtBackingFmt   = 0xe2792aca
	qcowExtFeatureNames = 0x6803f857
	qcowExtBitmaps      = 0x23852875
	qcowExtCrypto       = 0x0537be77
	qcowExtDataFile     = 0x44415441

	qcowMaxL1Bytes = 32 << 20
)

type rng struct{ off, end int64 }

type qcow2Stream struct {
	info        Info
	sr          *seqReader
	cs          int64 // cluster size
	clusterBits uint
	l2Entries   int64
	zstd        bool
	csizeShift  uint
	csizeMask   uint64
	coffMask    uint64

	rtOff, rtEnd int64 // refcount table
	l1           []uint64
	pendingL2    map[int64]bool // L2 tables not yet read
	refBlocks    map[int64]bool // refcount blocks: never needed
	refs         []rng          // file ranges the current L2 table maps, sorted

	l1i   int64 // next L1 index to load
	l2    []uint64
	l2i   int64 // next entry of l2 to emit
	guest int64 // guest offset of the next entry
	p     *pipeline
	runs  *sync.Pool // buffers for uncompressed runs
}

func openQcow2(r io.Reader, opts Options) (Stream, error) {
	sr := newSeqReader(r, 0, opts.MaxBuffer)
	fixed := make([]byte, 72)
	if err := sr.readAt(0, fixed); err != nil {
		return nil, fmt.Errorf("qcow2 header: %w", err)
	}
	bits, err := qcow2ClusterBits(fixed)
	if err != nil {
		return nil, err
	}
	// The rest of the first cluster: the header's tail and extensions
	// (the reader streams: what was read is not read again).
	first := make([]byte, 1<<bits)
	copy(first, fixed)
	n, err := sr.readAtMost(72, first[72:], true)
	if err != nil {
		return nil, fmt.Errorf("qcow2 header: %w", err)
	}
	h, err := parseQcow2Header(first[:72+n])
	if err != nil {
		return nil, err
	}
	if err := opts.checkSize("qcow2", h.size); err != nil {
		return nil, err
	}
	be := binary.BigEndian
	q := &qcow2Stream{sr: sr, clusterBits: h.clusterBits, cs: h.clusterSize(), zstd: h.zstd}
	size, l1Size, l1Off, rtOff, rtClusters := h.size, h.l1Size, h.l1Off, h.rtOff, h.rtClusters
	sub := fmt.Sprintf("v%d", h.version)
	q.l2Entries = q.cs / 8
	q.csizeShift = 62 - (q.clusterBits - 8)
	q.csizeMask = (1 << (q.clusterBits - 8)) - 1
	q.coffMask = (1 << q.csizeShift) - 1
	span := q.cs * q.l2Entries
	need := (size + span - 1) / span
	if l1Size < need {
		return nil, fmt.Errorf("%w: qcow2 L1 table has %d entries, the virtual size needs %d", ErrCorrupt, l1Size, need)
	}
	if need*8 > qcowMaxL1Bytes || need*8 > opts.MaxBuffer {
		return nil, fmt.Errorf("%w: qcow2 L1 table of %d entries", ErrTooLarge, need)
	}
	if l1Off%q.cs != 0 || (need > 0 && l1Off < q.cs) {
		return nil, fmt.Errorf("%w: qcow2 L1 table offset %d", ErrCorrupt, l1Off)
	}
	q.refBlocks = map[int64]bool{}
	if rtOff > 0 && rtOff%q.cs == 0 && rtClusters > 0 {
		q.rtOff, q.rtEnd = rtOff, rtOff+rtClusters*q.cs
	}
	sr.classify = q.classify
	// The refcount table tells which clusters are refcount blocks, so
	// they need not be kept when skipped; only worth it before the L1.
	if rtOff > 0 && rtOff%q.cs == 0 && rtOff < l1Off && rtClusters > 0 && rtClusters*q.cs <= 8<<20 {
		rt := make([]byte, rtClusters*q.cs)
		if err := sr.readAt(rtOff, rt); err != nil {
			return nil, fmt.Errorf("qcow2 refcount table: %w", err)
		}
		for i := 0; i+8 <= len(rt); i += 8 {
			if o := int64(be.Uint64(rt[i:]) & qcowOffsetMask); o != 0 {
				q.refBlocks[o] = true
			}
		}
	}
	raw := make([]byte, need*8)
	if err := sr.readAt(l1Off, raw); err != nil {
		return nil, fmt.Errorf("qcow2 L1 table: %w", err)
	}
	q.l1 = make([]uint64, need)
	q.pendingL2 = map[int64]bool{}
	for i := range q.l1 {
		e := be.Uint64(raw[i*8:]) & qcowOffsetMask
		if e%uint64(q.cs) != 0 {
			return nil, fmt.Errorf("%w: qcow2 L1 entry %d is not cluster aligned", ErrCorrupt, i)
		}
		q.l1[i] = e
		if e != 0 {
			q.pendingL2[int64(e)] = true
		}
	}
	q.info = Info{Format: "qcow2", Subformat: sub, Chain: []string{"qcow2"}, VirtualSize: size}
	q.p = newPipeline(q.gen, int(q.cs))
	q.runs = &sync.Pool{New: func() any { b := make([]byte, 4<<20); return &b }}
	return q, nil
}

func (q *qcow2Stream) Info() Info            { return q.info }
func (q *qcow2Stream) Next() (Extent, error) { return q.p.next() }

// classify decides whether skipped bytes may still be needed.
func (q *qcow2Stream) classify(off int64) (bool, int64) {
	c := off &^ (q.cs - 1)
	cend := c + q.cs
	if q.pendingL2[c] {
		return true, cend
	}
	if q.refBlocks[c] || c == 0 || (c >= q.rtOff && c < q.rtEnd) {
		// Header, refcount table and blocks: never needed again.
		return false, cend
	}
	i := sort.Search(len(q.refs), func(i int) bool { return q.refs[i].end > off })
	if i < len(q.refs) && q.refs[i].off <= off {
		return true, q.refs[i].end
	}
	if len(q.pendingL2) > 0 || q.l1 == nil {
		// A table not read yet may map these bytes.
		return true, cend
	}
	end := off + 64<<20
	if i < len(q.refs) {
		end = min(end, q.refs[i].off)
	}
	return false, end
}

// loadL2 reads the L2 table of L1 entry i, or returns nil for an
// unallocated one.
func (q *qcow2Stream) loadL2(i int64) error {
	q.l2, q.refs = nil, q.refs[:0]
	off := int64(q.l1[i])
	if off == 0 {
		return nil
	}
	raw := make([]byte, q.cs)
	if err := q.sr.readAt(off, raw); err != nil {
		return fmt.Errorf("qcow2 L2 table at %d: %w", off, err)
	}
	delete(q.pendingL2, off)
	q.l2 = make([]uint64, q.l2Entries)
	for j := range q.l2 {
		e := binary.BigEndian.Uint64(raw[j*8:])
		q.l2[j] = e
		if r, ok := q.hostRange(e); ok {
			q.refs = append(q.refs, r)
		}
	}
	sort.Slice(q.refs, func(a, b int) bool { return q.refs[a].off < q.refs[b].off })
	return nil
}

// hostRange is the file range an L2 entry's data occupies.
func (q *qcow2Stream) hostRange(e uint64) (rng, bool) {
	if e&qcowOflagCompressed != 0 {
		coff := int64(e & q.coffMask)
		n := int64((e>>q.csizeShift)&q.csizeMask) + 1
		return rng{coff, coff + n*512 - coff&511}, true
	}
	o := int64(e & qcowOffsetMask)
	if o == 0 || e&qcowOflagZero != 0 {
		return rng{}, false
	}
	return rng{o, o + q.cs}, true
}

// gen produces the next extent in guest order.
func (q *qcow2Stream) gen() (*item, error) {
	size := q.info.VirtualSize
	for {
		if q.guest >= size {
			return nil, io.EOF
		}
		if q.l2 == nil && q.l2i == 0 {
			if err := q.loadL2(q.l1i); err != nil {
				return nil, err
			}
			q.l1i++
			if q.l2 == nil {
				// A whole unallocated L2 range.
				n := min(q.cs*q.l2Entries, size-q.guest)
				it := &item{ext: Extent{Offset: q.guest, Length: n, Kind: KindHole}}
				q.guest += n
				return it, nil
			}
		}
		if q.l2i >= q.l2Entries {
			q.l2, q.l2i = nil, 0
			continue
		}
		return q.entry()
	}
}

// entry emits the run starting at the current L2 entry.
func (q *qcow2Stream) entry() (*item, error) {
	size := q.info.VirtualSize
	e := q.l2[q.l2i]
	n := min(q.cs, size-q.guest)
	off := q.guest
	if e&qcowOflagCompressed != 0 {
		r, _ := q.hostRange(e)
		// The sector-rounded size may reach into the next compressed
		// cluster: stop where the next mapped range starts, or keep the
		// overshoot for a table not read yet.
		end := r.end
		k := sort.Search(len(q.refs), func(i int) bool { return q.refs[i].off > r.off })
		bounded := k < len(q.refs) && q.refs[k].off < end
		if bounded {
			end = q.refs[k].off
		}
		src := make([]byte, end-r.off)
		got, err := q.sr.readAtMost(r.off, src, true)
		if err != nil {
			return nil, fmt.Errorf("qcow2 compressed cluster at %d: %w", r.off, err)
		}
		src = src[:got]
		if !bounded && len(q.pendingL2) > 0 {
			tail := max(0, got-511)
			q.sr.putBack(r.off+int64(tail), src[tail:])
		}
		q.l2i++
		q.guest += n
		cs := q.cs
		isZstd := q.zstd
		return q.p.async(off, n, func(dst []byte) error {
			full := dst[:cs:cs]
			var err error
			if isZstd {
				err = unzstd(full, src)
			} else {
				err = inflateRaw(full, src)
			}
			if err != nil {
				return fmt.Errorf("qcow2 compressed cluster for guest offset %d: %w", off, err)
			}
			return nil
		}), nil
	}
	host := int64(e & qcowOffsetMask)
	kind := KindData
	switch {
	case e&qcowOflagZero != 0:
		kind = KindZero
	case host == 0:
		kind = KindHole
	case host%q.cs != 0:
		return nil, fmt.Errorf("%w: qcow2 L2 entry for guest offset %d points at unaligned offset %d", ErrCorrupt, off, host)
	}
	// Extend the run over following entries of the same kind (and, for
	// data, contiguous on disk) up to 4 MiB.
	length := n
	q.l2i++
	q.guest += n
	for q.l2i < q.l2Entries && q.guest < size && length < 4<<20 {
		f := q.l2[q.l2i]
		if f&qcowOflagCompressed != 0 {
			break
		}
		fh := int64(f & qcowOffsetMask)
		var fk Kind
		switch {
		case f&qcowOflagZero != 0:
			fk = KindZero
		case fh == 0:
			fk = KindHole
		default:
			fk = KindData
		}
		if fk != kind || (kind == KindData && fh != host+length) {
			break
		}
		m := min(q.cs, size-q.guest)
		length += m
		q.l2i++
		q.guest += m
	}
	if kind != KindData {
		return &item{ext: Extent{Offset: off, Length: length, Kind: kind}}, nil
	}
	buf := q.runs.Get().(*[]byte)
	data := (*buf)[:length]
	if err := q.sr.readAt(host, data); err != nil {
		q.runs.Put(buf)
		return nil, fmt.Errorf("qcow2 data cluster at %d: %w", host, err)
	}
	return &item{ext: Extent{Offset: off, Length: length, Kind: KindData, Data: data}, pool: q.runs, bp: buf}, nil
}
