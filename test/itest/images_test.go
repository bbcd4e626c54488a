package itest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/pkg/metalapi"
)

// qemuImg runs qemu-img, failing the test on error.
func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// TestImageUploadServeAndRefuse uploads a qcow2 made by qemu-img through
// metalctl, checks metald's raw SHA-256 against qemu-img's conversion,
// fetches a range from /images/, and checks that a hostile image is
// refused without leaving anything behind.
func TestImageUploadServeAndRefuse(t *testing.T) {
	_, err := exec.LookPath("qemu-img")
	Require(t, err == nil, "qemu-img not found (Debian package qemu-utils)")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	buf := make([]byte, 24<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for off := 0; off < len(buf); off += 3 << 20 { // 1 MiB of data every 3 MiB
		for i := off; i < off+1<<20; i++ {
			buf[i] = byte(rng.Uint32())
		}
	}
	if err := os.WriteFile(raw, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "disk.qcow2")
	qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", "-c", raw, img)
	ref := filepath.Join(dir, "ref.raw")
	qemuImg(t, "convert", "-O", "raw", img, ref)
	want := fileSHA(t, ref)

	m := StartMetald(t, "")
	r := m.Ctl("image", "upload", img, "--name", "disk1", "-o", "json")
	wantOK(t, r, "upload")
	var got metalapi.Image
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.RawSHA256 != want || got.VirtualSize != int64(len(buf)) || got.Format != "qcow2" {
		t.Fatalf("stored image %+v, want raw sha %s", got, want)
	}
	wantFail(t, m.Ctl("image", "upload", img, "--name", "disk1"), "duplicate upload", "already exists")

	req, _ := http.NewRequest(http.MethodGet, m.URL+"/images/disk1", nil)
	req.Header.Set("Range", "bytes=100-199")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	orig, _ := os.ReadFile(img)
	if resp.StatusCode != http.StatusPartialContent || string(part) != string(orig[100:200]) {
		t.Fatalf("range request: %s, %d bytes", resp.Status, len(part))
	}

	// A qcow2 with a backing file must be refused and leave nothing.
	evil := filepath.Join(dir, "evil.qcow2")
	qemuImg(t, "create", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", evil, "1M")
	r = m.Ctl("image", "upload", evil, "--name", "evil")
	if r.Code == 0 || !strings.Contains(strings.ToLower(r.Stderr), "backing") {
		t.Fatalf("hostile upload: %+v", r)
	}
	entries, _ := os.ReadDir(filepath.Join(m.DataDir, "images"))
	for _, e := range entries {
		if strings.Contains(e.Name(), "evil") {
			t.Fatalf("refused upload left %s behind", e.Name())
		}
	}
	r = m.Ctl("image", "list", "-o", "json")
	if strings.Contains(r.Stdout, "evil") {
		t.Fatal("refused image listed")
	}
	wantOK(t, m.Ctl("image", "rm", "disk1"), "rm")
	if _, err := os.Stat(filepath.Join(m.DataDir, "images", got.File)); !os.IsNotExist(err) {
		t.Fatalf("image file kept after rm: %v", err)
	}
}
