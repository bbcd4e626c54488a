package tasks

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// TestProvisionChunksConfigDrive: after a chunked provision (and after a
// delta one onto the same disk) the config drive is appended exactly as
// after a streamed one.
func TestProvisionChunksConfigDrive(t *testing.T) {
	img := partitioned(t)
	cs := newChunkServer(t, img)
	r, disk := provisionSetup(t, 128<<20)
	for _, delta := range []bool{false, true} {
		task := cs.task(delta)
		task.ConfigDrive = nocloudDrive()
		var phases []string
		res := r.RunTask(context.Background(), task, func(p agentapi.Progress) {
			if len(phases) == 0 || phases[len(phases)-1] != string(p.Phase) {
				phases = append(phases, string(p.Phase))
			}
		})
		if !res.Success || res.ConfigDrive != disk+"2" || res.SHA256 != sha(img) || res.ManifestDigest != cs.m.Digest() {
			t.Fatalf("delta %v: result %+v", delta, res)
		}
		if got := strings.Join(phases, ","); !strings.HasSuffix(got, "verifying,config-drive,done") {
			t.Errorf("delta %v: phases %s", delta, got)
		}
		got, _ := os.ReadFile(disk)
		if len(got) != 128<<20 || !bytes.Equal(got[512:len(img)], img[512:]) || !bytes.Equal(got[:446], img[:446]) {
			t.Fatalf("delta %v: disk (%d bytes) does not hold the image before the drive", delta, len(got))
		}
		if delta && res.BytesSkipped != int64(len(img))-testChunk {
			// The config drive's partition entry is in chunk 0.
			t.Errorf("delta re-provision skipped %d of %d bytes, want all but chunk 0", res.BytesSkipped, len(img))
		}
	}
}
