package imaging

import (
	"encoding/binary"
	"fmt"
)

// qcow2Header is what a qcow2 image's first cluster says.
type qcow2Header struct {
	version     uint32
	clusterBits uint
	size        int64 // virtual size
	l1Size      int64 // L1 entries
	l1Off       int64
	rtOff       int64 // refcount table
	rtClusters  int64
	zstd        bool // compression type 1
}

func (h qcow2Header) clusterSize() int64 { return 1 << h.clusterBits }

// qcow2ClusterBits reads cluster_bits from the 72-byte fixed header, so
// that the caller knows how much of the file the header may span.
func qcow2ClusterBits(b []byte) (uint, error) {
	if len(b) < 72 {
		return 0, fmt.Errorf("%w: qcow2 header", ErrTruncated)
	}
	bits := uint(binary.BigEndian.Uint32(b[20:]))
	if bits < 9 || bits > 21 {
		return 0, fmt.Errorf("%w: qcow2 cluster_bits %d outside 9..21", ErrCorrupt, bits)
	}
	return bits, nil
}

// parseQcow2Header parses the start of a qcow2 image — the header and its
// extensions, which end within the first cluster; b is that cluster, or
// all of the file when it is shorter — and refuses what metal does not
// write to a disk: backing files, encryption, external data files,
// extended L2 entries, unknown incompatible features. It reads nothing
// else and keeps no state.
func parseQcow2Header(b []byte) (qcow2Header, error) {
	be := binary.BigEndian
	bits, err := qcow2ClusterBits(b)
	if err != nil {
		return qcow2Header{}, err
	}
	h := qcow2Header{version: be.Uint32(b[4:]), clusterBits: bits}
	if h.version != 2 && h.version != 3 {
		return h, fmt.Errorf("%w: qcow2 version %d", ErrUnsupported, h.version)
	}
	if be.Uint64(b[8:]) != 0 {
		return h, fmt.Errorf("%w: qcow2 image has a backing file; only self-contained images are accepted", ErrHostile)
	}
	cs := h.clusterSize()
	h.size = int64(be.Uint64(b[24:]))
	if cm := be.Uint32(b[32:]); cm != 0 {
		return h, fmt.Errorf("%w: qcow2 image is encrypted (crypt_method %d)", ErrHostile, cm)
	}
	h.l1Size = int64(be.Uint32(b[36:]))
	h.l1Off = int64(be.Uint64(b[40:]))
	h.rtOff = int64(be.Uint64(b[48:]))
	h.rtClusters = int64(be.Uint32(b[56:]))
	hdrLen := int64(72)
	if h.version == 3 {
		if len(b) < 104 {
			return h, fmt.Errorf("%w: qcow2 header", ErrTruncated)
		}
		incompat := be.Uint64(b[72:])
		hdrLen = int64(be.Uint32(b[100:]))
		if hdrLen < 104 || hdrLen > cs {
			return h, fmt.Errorf("%w: qcow2 header_length %d", ErrCorrupt, hdrLen)
		}
		if incompat&qcowIncompatCorrupt != 0 {
			return h, fmt.Errorf("%w: qcow2 image is marked corrupt (run qemu-img check -r all)", ErrCorrupt)
		}
		if incompat&qcowIncompatDataFile != 0 {
			return h, fmt.Errorf("%w: qcow2 image keeps its data in an external data file", ErrHostile)
		}
		if incompat&qcowIncompatExtL2 != 0 {
			return h, fmt.Errorf("%w: qcow2 extended L2 entries (subclusters, extended_l2=on); convert with extended_l2=off", ErrUnsupported)
		}
		if unknown := incompat &^ (qcowIncompatDirty | qcowIncompatCompress); unknown != 0 {
			return h, fmt.Errorf("%w: qcow2 unknown incompatible feature bits %#x", ErrUnsupported, unknown)
		}
		if incompat&qcowIncompatCompress != 0 {
			if hdrLen <= 104 {
				return h, fmt.Errorf("%w: qcow2 compression type bit set without the header field", ErrCorrupt)
			}
			if len(b) < 105 {
				return h, fmt.Errorf("%w: qcow2 header", ErrTruncated)
			}
			switch b[104] {
			case 0:
			case 1:
				h.zstd = true
			default:
				return h, fmt.Errorf("%w: qcow2 compression type %d", ErrUnsupported, b[104])
			}
		}
	}
	// Header extensions, up to the end of the first cluster.
	for off := hdrLen; off+8 <= cs; {
		if off+8 > int64(len(b)) {
			return h, fmt.Errorf("%w: qcow2 header extensions", ErrTruncated)
		}
		typ, ln := be.Uint32(b[off:]), int64(be.Uint32(b[off+4:]))
		if typ == qcowExtEnd {
			break
		}
		switch typ {
		case qcowExtDataFile:
			return h, fmt.Errorf("%w: qcow2 image names an external data file", ErrHostile)
		case qcowExtCrypto:
			return h, fmt.Errorf("%w: qcow2 image carries an encryption header", ErrHostile)
		}
		off += 8 + (ln+7)/8*8
		if off > cs {
			return h, fmt.Errorf("%w: qcow2 header extension runs past the first cluster", ErrCorrupt)
		}
	}
	return h, nil
}
