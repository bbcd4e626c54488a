package imaging

import "testing"

// FuzzParseVHDX feeds arbitrary headers, region tables and BATs to the
// VHDX parsers: they refuse or answer, never panic, and what they accept
// is consistent.
func FuzzParseVHDX(f *testing.F) {
	f.Add(make([]byte, 4096), make([]byte, vhdxRegionSize), []byte{0x06, 0, 0x10, 0, 0, 0, 0, 0}, int64(1), int64(1<<20), int64(128))
	f.Fuzz(func(t *testing.T, hdr, rt, bat []byte, blocks, bs, chunk int64) {
		_, _ = pickVHDXHeader(hdr, hdr)
		if bo, _, mo, ml, err := parseVHDXRegions(rt, nil); err == nil && (bo < vhdxRegion2 || mo < vhdxRegion2 || ml > vhdxMaxMetadata) {
			t.Fatalf("regions accepted: bat %d meta %d+%d", bo, mo, ml)
		}
		if blocks < 0 || blocks > 1<<16 || chunk < 1 || bs < 1<<20 {
			return
		}
		entries, refs, _, err := parseVHDXBAT(bat, blocks, bs, chunk)
		if err != nil {
			return
		}
		if int64(len(entries)) != blocks {
			t.Fatalf("%d entries for %d blocks", len(entries), blocks)
		}
		for i := 1; i < len(refs); i++ {
			if refs[i].off < refs[i-1].end {
				t.Fatal("overlapping blocks accepted")
			}
		}
	})
}
