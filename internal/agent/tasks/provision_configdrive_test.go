package tasks

import (
	"bytes"
	"context"
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

// partitioned is an 8 MiB raw disk with one MBR partition (sfdisk).
func partitioned(t *testing.T) []byte {
	t.Helper()
	testenv.Tool(t, "sfdisk", "fdisk")
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, payload(8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sfdisk", "-q", "--no-reread", "--no-tell-kernel", p)
	cmd.Stdin = strings.NewReader("label: dos\nstart=2048, type=83\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(p)
	return b
}

func nocloudDrive() *agentapi.ConfigDrive {
	return &agentapi.ConfigDrive{Format: agentapi.ConfigDriveNoCloud, Label: "CIDATA", SizeBytes: agentapi.DefaultConfigDriveSize,
		Files: []agentapi.File{{Path: "meta-data", Data: []byte("instance-id: x-1\n")}}}
}

// TestProvisionConfigDrive: the image is written and verified, then the
// drive is appended after it; a disk that holds the image but not the
// drive too is refused before a byte is written; an image without a
// partition table fails with a message that names the config drive.
func TestProvisionConfigDrive(t *testing.T) {
	img := partitioned(t)
	bare := payload(8 << 20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := img
		if r.URL.Path == "/bare" {
			b = bare
		}
		http.ServeContent(w, r, "img", time.Time{}, bytes.NewReader(b))
	}))
	defer srv.Close()
	task := func(path string, b []byte) agentapi.Task {
		return agentapi.Task{ID: "p", Kind: agentapi.TaskProvision, Token: "t", ConfigDrive: nocloudDrive(),
			Image: &agentapi.Image{URL: srv.URL + path, SHA256: sha(b), VirtualSize: int64(len(b))}}
	}

	r, disk := provisionSetup(t, 128<<20)
	var phases []agentapi.Phase
	res := r.RunTask(context.Background(), task("/img", img), func(p agentapi.Progress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	})
	if !res.Success || res.ConfigDrive != disk+"2" {
		t.Fatalf("result %+v", res)
	}
	if got := strings.Join(func() []string {
		var s []string
		for _, p := range phases {
			s = append(s, string(p))
		}
		return s
	}(), ","); !strings.Contains(got, "verifying,config-drive,done") {
		t.Errorf("phases %s", got)
	}
	got, _ := os.ReadFile(disk)
	if len(got) != 128<<20 || !bytes.Equal(got[512:len(img)], img[512:]) || !bytes.Equal(got[:446], img[:446]) {
		t.Fatalf("disk (%d bytes) does not hold the image before the drive", len(got))
	}

	r, disk = provisionSetup(t, 40<<20)
	res = r.RunTask(context.Background(), task("/img", img), func(agentapi.Progress) {})
	if res.Success || !strings.Contains(res.Error, "enough for the image (8388608) but not for the image and the 67108864-byte config drive") {
		t.Fatalf("small disk: %+v", res)
	}
	if b, _ := os.ReadFile(disk); !bytes.Equal(b, bytes.Repeat([]byte{0x5a}, 40<<20)) {
		t.Fatal("a disk too small for the drive was written to")
	}

	r, _ = provisionSetup(t, 128<<20)
	res = r.RunTask(context.Background(), task("/bare", bare), func(agentapi.Progress) {})
	if res.Success || !strings.Contains(res.Error, "config drive failed") || !strings.Contains(res.Error, "--config-drive none") {
		t.Fatalf("bare image: %+v", res)
	}
}
