package agentboot

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenMatchesHTTP: what TFTP sends (Open) is byte for byte what
// /agent/* serves, CA archive included.
func TestOpenMatchesHTTP(t *testing.T) {
	for _, ca := range [][]byte{nil, []byte("-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n")} {
		url, _ := serve(t, ca)
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "initrd"), []byte("0707010000FAKE-INITRD"), 0o644)
		os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("kernel"), 0o644)
		f, err := New(dir, ca, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"vmlinuz", "initrd"} {
			_, want := get(t, url+"/agent/"+name)
			fh, size, err := f.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(fh)
			fh.Close()
			if !bytes.Equal(got, want) || size != int64(len(want)) {
				t.Errorf("ca %v, %s: Open gives %d bytes (size %d), HTTP %d", ca != nil, name, len(got), size, len(want))
			}
		}
		if _, _, err := f.Open("../secret.key"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(../secret.key): %v", err)
		}
	}
}
