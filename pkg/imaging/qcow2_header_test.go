package imaging

import (
	"encoding/binary"
	"errors"
	"testing"
)

// qcow2Head is a minimal valid v3 first cluster (512-byte clusters).
func qcow2Head() []byte {
	b := make([]byte, 512)
	be := binary.BigEndian
	copy(b, "QFI\xfb")
	be.PutUint32(b[4:], 3)
	be.PutUint32(b[20:], 9)
	be.PutUint64(b[24:], 1<<20)
	be.PutUint32(b[36:], 8)
	be.PutUint64(b[40:], 1024)
	be.PutUint32(b[100:], 104)
	return b
}

// TestParseQcow2Header: the header parser alone, table-driven: what it
// reads, and what it refuses with which sentinel.
func TestParseQcow2Header(t *testing.T) {
	be := binary.BigEndian
	for _, c := range []struct {
		name string
		edit func(b []byte) []byte
		want error
	}{
		{"valid", func(b []byte) []byte { return b }, nil},
		{"version 1", func(b []byte) []byte { be.PutUint32(b[4:], 1); return b }, ErrUnsupported},
		{"backing file", func(b []byte) []byte { be.PutUint64(b[8:], 600); return b }, ErrHostile},
		{"cluster bits 8", func(b []byte) []byte { be.PutUint32(b[20:], 8); return b }, ErrCorrupt},
		{"encrypted", func(b []byte) []byte { be.PutUint32(b[32:], 1); return b }, ErrHostile},
		{"external data file bit", func(b []byte) []byte { be.PutUint64(b[72:], qcowIncompatDataFile); return b }, ErrHostile},
		{"extended L2", func(b []byte) []byte { be.PutUint64(b[72:], qcowIncompatExtL2); return b }, ErrUnsupported},
		{"unknown feature", func(b []byte) []byte { be.PutUint64(b[72:], 1<<40); return b }, ErrUnsupported},
		{"marked corrupt", func(b []byte) []byte { be.PutUint64(b[72:], qcowIncompatCorrupt); return b }, ErrCorrupt},
		{"header length past the cluster", func(b []byte) []byte { be.PutUint32(b[100:], 4096); return b }, ErrCorrupt},
		{"crypto extension", func(b []byte) []byte {
			be.PutUint32(b[104:], qcowExtCrypto)
			be.PutUint32(b[108:], 16)
			return b
		}, ErrHostile},
		{"extension past the cluster", func(b []byte) []byte {
			be.PutUint32(b[104:], qcowExtFeatureNames)
			be.PutUint32(b[108:], 1000)
			return b
		}, ErrCorrupt},
		{"cut in the extensions", func(b []byte) []byte { be.PutUint32(b[104:], qcowExtBackingFmt); return b[:110] }, ErrTruncated},
		{"cut in the header", func(b []byte) []byte { return b[:60] }, ErrTruncated},
		{"zstd", func(b []byte) []byte {
			be.PutUint64(b[72:], qcowIncompatCompress)
			be.PutUint32(b[100:], 112)
			b[104] = 1
			return b
		}, nil},
		{"compression type 7", func(b []byte) []byte {
			be.PutUint64(b[72:], qcowIncompatCompress)
			be.PutUint32(b[100:], 112)
			b[104] = 7
			return b
		}, ErrUnsupported},
	} {
		h, err := parseQcow2Header(c.edit(qcow2Head()))
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if err == nil && (h.clusterSize() != 512 || h.size != 1<<20 || h.l1Off != 1024 || h.zstd != (c.name == "zstd")) {
			t.Errorf("%s: %+v", c.name, h)
		}
	}
}

func FuzzParseQcow2Header(f *testing.F) {
	f.Add(qcow2Head())
	f.Add(qcow2Head()[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseQcow2Header(b)
		if err != nil {
			return
		}
		if h.clusterBits < 9 || h.clusterBits > 21 || (h.version != 2 && h.version != 3) {
			t.Fatalf("accepted %+v", h)
		}
	})
}
