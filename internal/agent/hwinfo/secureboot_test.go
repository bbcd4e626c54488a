package hwinfo

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSecureBoot(t *testing.T) {
	params := func(mode byte) []byte {
		b := make([]byte, 4096)
		b[bootParamsSBOff] = mode
		return b
	}
	for _, tc := range []struct {
		name     string
		files    map[string][]byte
		firmware string
		enabled  bool
	}{
		{"bios", map[string][]byte{bootParams: params(0)}, "bios", false},
		{"uefi enforcing", map[string][]byte{efiDir + "/x": nil, bootParams: params(3)}, "uefi", true},
		{"uefi disabled", map[string][]byte{efiDir + "/x": nil, bootParams: params(2)}, "uefi", false},
		{"unset: efivar on", map[string][]byte{efiDir + "/x": nil, bootParams: params(0), efiVarSecureBoot: {6, 0, 0, 0, 1}}, "uefi", true},
		{"no boot_params: efivar off", map[string][]byte{efiVarSecureBoot: {6, 0, 0, 0, 0}}, "uefi", false},
		{"efivar only: on", map[string][]byte{efiVarSecureBoot: {6, 0, 0, 0, 1}}, "uefi", true},
		{"short boot_params, truncated efivar", map[string][]byte{bootParams: {3}, efiVarSecureBoot: {6, 0}}, "uefi", false},
		{"uefi, nothing readable", map[string][]byte{efiDir + "/x": nil}, "uefi", false},
	} {
		root := t.TempDir()
		for name, b := range tc.files {
			p := filepath.Join(root, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		fw, on := SecureBoot(root)
		if fw != tc.firmware || on != tc.enabled {
			t.Errorf("%s: SecureBoot = %s %v, want %s %v", tc.name, fw, on, tc.firmware, tc.enabled)
		}
	}
}
