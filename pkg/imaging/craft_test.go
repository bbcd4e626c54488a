package imaging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Hand-made images: tiny, fully controlled, for bombs and fuzz seeds.

func deflateRaw(b []byte) []byte {
	var out bytes.Buffer
	w, _ := flate.NewWriter(&out, flate.BestCompression)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func zlibBytes(b []byte) []byte {
	var out bytes.Buffer
	w := zlib.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func zstdBytes(b []byte) []byte {
	e, _ := zstd.NewWriter(nil)
	defer e.Close()
	return e.EncodeAll(b, nil)
}

// craftQcow2 builds a v3 qcow2 with 512-byte clusters and a 1 KiB disk:
// guest cluster 0 is the compressed cluster comp (zlib or zstd), cluster 1
// is a zero cluster.
func craftQcow2(comp []byte, useZstd bool) []byte {
	const cs = 512
	be := binary.BigEndian
	b := make([]byte, 3*cs)
	copy(b, "QFI\xfb")
	be.PutUint32(b[4:], 3)
	be.PutUint32(b[20:], 9)    // cluster_bits
	be.PutUint64(b[24:], 2*cs) // size
	be.PutUint32(b[36:], 1)    // l1_size
	be.PutUint64(b[40:], 1*cs) // l1_table_offset
	be.PutUint64(b[48:], 0)    // no refcount table (we don't need it)
	be.PutUint32(b[100:], 112) // header_length
	if useZstd {
		be.PutUint64(b[72:], qcowIncompatCompress)
		b[104] = 1
	}
	be.PutUint64(b[cs:], 2*cs|qcowOflagCopied) // L1[0] -> L2 at cluster 2
	nsec := (len(comp) + 511) / 512
	coff := uint64(3 * cs)
	be.PutUint64(b[2*cs:], qcowOflagCompressed|uint64(nsec-1)<<61|coff)
	be.PutUint64(b[2*cs+8:], qcowOflagZero)
	b = append(b, comp...)
	for len(b)%512 != 0 {
		b = append(b, 0)
	}
	return b
}

// craftVMDKStream builds a streamOptimized VMDK of one 64 KiB grain whose
// zlib stream is grain.
func craftVMDKStream(grain []byte) []byte {
	le := binary.LittleEndian
	b := make([]byte, 2*512)
	copy(b, "KDMV")
	le.PutUint32(b[4:], 3)
	le.PutUint32(b[8:], vmdkFlagNewline|vmdkFlagCompressed|vmdkFlagMarkers)
	le.PutUint64(b[12:], 128) // capacity
	le.PutUint64(b[20:], 128) // grain
	le.PutUint64(b[28:], 1)   // descriptor offset
	le.PutUint64(b[36:], 1)   // descriptor size
	le.PutUint32(b[44:], 512)
	le.PutUint64(b[56:], vmdkGDAtEnd)
	le.PutUint64(b[64:], 2) // overhead
	copy(b[73:], "\n \r\n")
	le.PutUint16(b[77:], 1)
	copy(b[512:], "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\nRW 128 SPARSE \"x.vmdk\"\n")
	m := make([]byte, 12)
	le.PutUint64(m, 0)
	le.PutUint32(m[8:], uint32(len(grain)))
	b = append(b, m...)
	b = append(b, grain...)
	for len(b)%512 != 0 {
		b = append(b, 0)
	}
	return append(b, make([]byte, 512)...) // EOS marker
}

func TestCraftedImagesDecode(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 32) // one 512-byte cluster
	for _, c := range []struct {
		name string
		img  []byte
		want []byte
	}{
		{"qcow2 zlib", craftQcow2(deflateRaw(data), false), append(append([]byte(nil), data...), make([]byte, 512)...)},
		{"qcow2 zstd", craftQcow2(zstdBytes(data), true), append(append([]byte(nil), data...), make([]byte, 512)...)},
		{"vmdk stream", craftVMDKStream(zlibBytes(bytes.Repeat(data, 128))), bytes.Repeat(data, 128)},
		{"vhdx", craftVHDX(), make([]byte, 2<<20)},
	} {
		s, err := Open(bytes.NewReader(c.img), Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := collect(t, s)
		if !bytes.Equal(got, c.want) {
			t.Fatalf("%s: decoded %d bytes differ from the %d expected", c.name, len(got), len(c.want))
		}
	}
}

// TestDecompressionBombs: compressed data that inflates beyond the cluster
// or grain it stands for is refused, whatever qemu would silently cut.
func TestDecompressionBombs(t *testing.T) {
	bomb := make([]byte, 64<<20)
	for _, c := range []struct {
		name string
		img  []byte
	}{
		{"qcow2 deflate", craftQcow2(deflateRaw(bomb[:1<<20]), false)},
		{"qcow2 zstd", craftQcow2(zstdBytes(bomb[:1<<20]), true)},
		{"vmdk grain", craftVMDKStream(zlibBytes(bomb))},
	} {
		s, err := Open(bytes.NewReader(c.img), Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, err = drainErr(s)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v, want ErrCorrupt", c.name, err)
		}
		t.Logf("%s: %v", c.name, err)
	}
}

func collect(t *testing.T, s Stream) []byte {
	t.Helper()
	var out []byte
	for {
		e, err := s.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatal(err)
		}
		if int64(len(out)) < e.Offset {
			out = append(out, make([]byte, e.Offset-int64(len(out)))...)
		}
		if e.Kind == KindData {
			out = append(out, e.Data...)
		} else {
			out = append(out, make([]byte, e.Length)...)
		}
	}
}

// craftVHDX builds a small VHDX: 1 MiB blocks, a 2 MiB disk whose first
// block is ZERO and second NOT_PRESENT, regions packed after the region
// tables (legal for this reader, smaller than the spec's 1 MiB alignment).
func craftVHDX() []byte {
	le := binary.LittleEndian
	const metaOff, metaLen, batOff = 320 << 10, 128 << 10, 448 << 10
	b := make([]byte, batOff+4096)
	copy(b, "vhdxfile")
	for i, h := range []int{vhdxHeader1, vhdxHeader2} {
		hb := b[h : h+4096]
		copy(hb, "head")
		le.PutUint64(hb[8:], uint64(i+1)) // sequence
		le.PutUint16(hb[66:], 1)          // version
		le.PutUint32(hb[4:], crc32.Checksum(hb, crc32c))
	}
	for _, r := range []int{vhdxRegion1, vhdxRegion2} {
		rb := b[r : r+vhdxRegionSize]
		copy(rb, "regi")
		le.PutUint32(rb[8:], 2)
		copy(rb[16:], guidBAT[:])
		le.PutUint64(rb[32:], batOff)
		le.PutUint32(rb[40:], 4096)
		le.PutUint32(rb[44:], 1)
		copy(rb[48:], guidMetadata[:])
		le.PutUint64(rb[64:], metaOff)
		le.PutUint32(rb[72:], metaLen)
		le.PutUint32(rb[76:], 1)
		le.PutUint32(rb[4:], crc32.Checksum(rb, crc32c))
	}
	m := b[metaOff : metaOff+metaLen]
	copy(m, "metadata")
	items := []struct {
		id   [16]byte
		data []byte
	}{
		{guidFileParams, le.AppendUint32(le.AppendUint32(nil, 1<<20), 0)},
		{guidDiskSize, le.AppendUint64(nil, 2<<20)},
		{guidLogicalSect, le.AppendUint32(nil, 512)},
	}
	le.PutUint16(m[10:], uint16(len(items)))
	dataOff := 64 << 10 // item data starts 64 KiB into the region
	for i, it := range items {
		e := m[32+i*32:]
		copy(e, it.id[:])
		// Item data lives in the second half of the region.
		off := dataOff + i*16
		copy(m[off:], it.data)
		le.PutUint32(e[16:], uint32(off))
		le.PutUint32(e[20:], uint32(len(it.data)))
		le.PutUint32(e[24:], 4) // required
	}
	le.PutUint64(b[batOff:], vhdxZero)
	le.PutUint64(b[batOff+8:], vhdxNotPresent)
	return b
}
