package imaging

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// FuzzChunkDigests feeds chunkDigests runs of data (some of it zeros)
// and holes in disk order, as Write's hasher stage does, and checks it
// names every chunk as hashing the assembled disk chunk by chunk does.
func FuzzChunkDigests(f *testing.F) {
	f.Add([]byte{3, 0, 200, 1, 40, 7, 2, 250, 9}, uint8(1))
	f.Add([]byte{0, 255, 1, 255, 2, 255}, uint8(0))
	f.Add(bytes.Repeat([]byte{1, 17}, 40), uint8(3))
	f.Fuzz(func(t *testing.T, plan []byte, cs uint8) {
		chunk := int64(cs%4+1) * 4096
		c := newChunkDigests(chunk)
		var disk []byte
		for i := 0; i+1 < len(plan) && len(disk) < 1<<20; i += 2 {
			n := int(plan[i+1])*97 + 1
			switch plan[i] % 3 {
			case 0: // a hole or zero run
				disk = append(disk, make([]byte, n)...)
			case 1: // data
				b := make([]byte, n)
				for j := range b {
					b[j] = byte(j*31 + i + 1)
				}
				c.data(int64(len(disk)), b)
				disk = append(disk, b...)
			default: // data that is all zeros
				b := make([]byte, n)
				c.data(int64(len(disk)), b)
				disk = append(disk, b...)
			}
		}
		m, err := c.manifest(int64(len(disk)))
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range m.Chunks {
			off, n := m.ChunkRange(i)
			part := disk[off : off+n]
			want := ""
			if !allZero(part) {
				s := sha256.Sum256(part)
				want = hex.EncodeToString(s[:])
			}
			if d != want {
				t.Fatalf("chunk %d of %d bytes: %q, want %q", i, chunk, d, want)
			}
		}
	})
}
