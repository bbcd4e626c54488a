package tasks

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/test/testenv"
)

// TestProvisionFastServerAlignedImages provisions from a fast local server
// that never drops: raw images that are exactly a multiple of imaging's
// 4 MiB read chunk and not, and a qcow2 from qemu-img. The agent used to
// ask for "Range: bytes=<size>-" after the last chunk of an aligned image
// had arrived together with io.EOF, get 416, and retry with backoff for
// ~150 s before failing the provision. The "eager" client makes that
// arrival deterministic (every Read fills the buffer, the last one with
// io.EOF: data already buffered, a fast network in front of a slow disk);
// the "plain" one is net/http as it comes. Production retry settings, so
// a retry loop shows up as a timeout.
func TestProvisionFastServerAlignedImages(t *testing.T) {
	type image struct {
		name   string
		served func(t *testing.T) (file, raw []byte)
	}
	rawImage := func(n int) func(*testing.T) ([]byte, []byte) {
		return func(*testing.T) ([]byte, []byte) {
			b := payload(n)
			clear(b[1<<20 : 2<<20]) // a zero run, written as a hole
			return b, b
		}
	}
	images := []image{
		{"raw 8MiB", rawImage(8 << 20)},
		{"raw 8MiB+12345", rawImage(8<<20 + 12345)},
		{"qcow2", func(t *testing.T) ([]byte, []byte) {
			testenv.Tool(t, "qemu-img", "qemu-utils") // skips, naming qemu-img, when it is missing
			dir := t.TempDir()
			raw := make([]byte, 8<<20)
			copy(raw, payload(3<<20))
			copy(raw[5<<20:], payload(1<<20+777))
			if err := os.WriteFile(filepath.Join(dir, "a.raw"), raw, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", filepath.Join(dir, "a.raw"), filepath.Join(dir, "a.qcow2")).CombinedOutput(); err != nil {
				t.Fatalf("qemu-img: %v\n%s", err, out)
			}
			q, err := os.ReadFile(filepath.Join(dir, "a.qcow2"))
			if err != nil {
				t.Fatal(err)
			}
			return q, raw
		}},
	}
	for _, im := range images {
		for _, eager := range []bool{true, false} {
			name := im.name + "/plain"
			if eager {
				name = im.name + "/eager"
			}
			t.Run(name, func(t *testing.T) {
				file, raw := im.served(t)
				srv, reqs, ranged := contentServer(t, file)
				r, disk := provisionSetup(t, 16<<20)
				r.Resume = ResumeOptions{} // production: 500 ms backoff doubling, 10 retries
				if eager {
					r.HTTP = &http.Client{Transport: eagerEOFTransport{}}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				start := time.Now()
				var last agentapi.Progress
				res := r.RunTask(ctx, agentapi.Task{ID: "p", Kind: agentapi.TaskProvision, Token: "t",
					Image: &agentapi.Image{URL: srv.URL, SHA256: sha(raw), VirtualSize: int64(len(raw))}},
					func(p agentapi.Progress) { last = p })
				el := time.Since(start)
				if !res.Success || res.SHA256 != sha(raw) || res.BytesWritten != int64(len(raw)) {
					t.Fatalf("after %v, %d requests (%d with Range): result %+v", el, reqs.Load(), ranged.Load(), res)
				}
				if reqs.Load() != 1 || ranged.Load() != 0 {
					t.Errorf("%d requests, %d with Range; want 1 and none", reqs.Load(), ranged.Load())
				}
				if el > 3*time.Second {
					t.Errorf("provisioning %d bytes from a local server took %v", len(file), el)
				}
				if last.Phase != agentapi.PhaseDone || last.BytesRead != int64(len(file)) {
					t.Errorf("last progress %+v, want done after reading %d bytes", last, len(file))
				}
				got, _ := os.ReadFile(disk)
				if !bytes.Equal(got, raw) {
					t.Fatalf("disk has %d bytes, differs from the %d-byte raw image", len(got), len(raw))
				}
			})
		}
	}
}
