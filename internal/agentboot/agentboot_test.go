package agentboot

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func serve(t *testing.T, caPEM []byte) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	initrd := []byte("0707010000FAKE-INITRD") // 21 bytes: the overlay needs 3 bytes of padding
	os.WriteFile(filepath.Join(dir, "initrd"), initrd, 0o644)
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("kernel"), 0o644)
	f, err := New(dir, caPEM, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	f.Mount(func(p string, h http.Handler) { mux.Handle(p, h) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, initrd
}

func get(t *testing.T, url string, hdr ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestInitrdWithoutCA(t *testing.T) {
	url, initrd := serve(t, nil)
	if code, b := get(t, url+"/agent/initrd"); code != 200 || !bytes.Equal(b, initrd) {
		t.Errorf("initrd: %d %q", code, b)
	}
	if code, b := get(t, url+"/agent/vmlinuz"); code != 200 || string(b) != "kernel" {
		t.Errorf("vmlinuz: %d %q", code, b)
	}
	if code, _ := get(t, url+"/agent/initrd/x"); code != 404 {
		t.Errorf("/agent/initrd/x: %d", code)
	}
}

func TestInitrdCarriesTheCA(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n")
	url, initrd := serve(t, ca)
	code, b := get(t, url+"/agent/initrd")
	if code != 200 || !bytes.HasPrefix(b, initrd) {
		t.Fatalf("initrd: %d, does not start with the built initrd", code)
	}
	pad := b[len(initrd) : len(initrd)+3]
	if !bytes.Equal(pad, []byte{0, 0, 0}) || (len(initrd)+3)%4 != 0 {
		t.Fatalf("appended archive not on a 4-byte boundary after zeros: % x", pad)
	}
	gz, err := gzip.NewReader(bytes.NewReader(b[len(initrd)+3:]))
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(gz)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("no cpio to read the archive")
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-id", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(archive)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "etc/metal/ca.pem"))
	if err != nil || !bytes.Equal(got, ca) {
		t.Fatalf("etc/metal/ca.pem: %q %v", got, err)
	}
	// Ranges across the seam between file and overlay.
	code, part := get(t, url+"/agent/initrd", "Range", "bytes=18-25")
	if code != http.StatusPartialContent || !bytes.Equal(part, b[18:26]) {
		t.Errorf("range: %d %q, want %q", code, part, b[18:26])
	}
	if !strings.Contains(string(archive), "TRAILER!!!") {
		t.Errorf("archive has no trailer")
	}
}
