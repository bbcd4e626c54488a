package tasks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/test/testenv"
)

func provisionSetup(t *testing.T, diskSize int64) (*Runner, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "vda"), bytes.Repeat([]byte{0x5a}, int(diskSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Runner{
		DevDir: dir,
		Disks:  func() []agentapi.Disk { return []agentapi.Disk{{Name: "vda", SizeBytes: diskSize}} },
		HTTP:   &http.Client{},
		Resume: fastOpts(),
	}, filepath.Join(dir, "vda")
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A raw image served by a server that drops the connection every 300 kB.
func TestProvisionRawWithDrops(t *testing.T) {
	img := payload(3 << 20)
	srv, reqs := dropServer(t, img, 300_000, nil)
	r, disk := provisionSetup(t, 8<<20)
	var last agentapi.Progress
	res := r.RunTask(context.Background(), agentapi.Task{ID: "p", Kind: agentapi.TaskProvision, Token: "t",
		Image: &agentapi.Image{URL: srv.URL, SHA256: sha(img), VirtualSize: int64(len(img))}},
		func(p agentapi.Progress) { last = p })
	if !res.Success || res.SHA256 != sha(img) || res.Disk != disk {
		t.Fatalf("result %+v", res)
	}
	got, _ := os.ReadFile(disk)
	if !bytes.Equal(got, img) {
		// A regular-file target is truncated to the virtual size.
		t.Fatalf("disk has %d bytes, differs from the %d-byte image", len(got), len(img))
	}
	if reqs.Load() < 10 || last.Phase != agentapi.PhaseDone || last.BytesWritten != int64(len(img)) {
		t.Errorf("%d requests, last progress %+v", reqs.Load(), last)
	}
}

func TestProvisionFailures(t *testing.T) {
	img := payload(1 << 20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "img", time.Time{}, bytes.NewReader(img))
	}))
	defer srv.Close()
	cases := []struct {
		name string
		img  agentapi.Image
		want string
	}{
		{"sha mismatch", agentapi.Image{URL: srv.URL, SHA256: strings.Repeat("0", 64), VirtualSize: 1 << 20}, "task expects"},
		{"size mismatch", agentapi.Image{URL: srv.URL, VirtualSize: 2 << 20}, "image produced 1048576 bytes of raw disk, task says 2097152"},
		{"disk too small", agentapi.Image{URL: srv.URL, VirtualSize: 64 << 20}, "no suitable disk"},
		{"404", agentapi.Image{URL: srv.URL + "/../x", VirtualSize: 1 << 20}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := provisionSetup(t, 4<<20)
			if c.name == "404" {
				r.HTTP = &http.Client{Transport: http.NewFileTransport(http.Dir(t.TempDir()))}
				c.img.URL = "http://x/missing"
				c.want = "404"
			}
			res := r.RunTask(context.Background(), agentapi.Task{ID: "p", Kind: agentapi.TaskProvision, Token: "t", Image: &c.img}, func(agentapi.Progress) {})
			if res.Success || !strings.Contains(res.Error, c.want) {
				t.Fatalf("result %+v, want failure with %q", res, c.want)
			}
		})
	}
}

// qemu-img is the real peer: a qcow2 it writes provisions to the bytes of
// the raw image it was made from.
func TestProvisionQcow2FromQemuImg(t *testing.T) {
	testenv.Tool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := make([]byte, 6<<20)
	copy(raw[1<<20:], payload(700_000))
	copy(raw[4<<20:], payload(123_456))
	if err := os.WriteFile(filepath.Join(dir, "a.raw"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", filepath.Join(dir, "a.raw"), filepath.Join(dir, "a.qcow2")).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	q, _ := os.ReadFile(filepath.Join(dir, "a.qcow2"))
	srv, _ := dropServer(t, q, 200_000, nil)
	r, disk := provisionSetup(t, 8<<20)
	res := r.RunTask(context.Background(), agentapi.Task{ID: "p", Kind: agentapi.TaskProvision, Token: "t",
		Image: &agentapi.Image{URL: srv.URL, SHA256: sha(raw), VirtualSize: int64(len(raw))}}, func(agentapi.Progress) {})
	if !res.Success {
		t.Fatalf("result %+v", res)
	}
	got, _ := os.ReadFile(disk)
	if !bytes.Equal(got, raw) {
		t.Fatal("disk differs from the raw image")
	}
}
