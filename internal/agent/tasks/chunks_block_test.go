package tasks

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/test/testenv"
)

// loopDisk attaches a loop device over a file of size bytes of 0xa5 (so
// zero chunks that are not zeroed show) and returns a Runner whose "vda"
// is that device.
func loopDisk(t *testing.T, size int64) (*Runner, string) {
	t.Helper()
	testenv.Root(t)
	testenv.Tool(t, "losetup", "mount")
	dir := t.TempDir()
	backing := filepath.Join(dir, "backing")
	if err := os.WriteFile(backing, bytes.Repeat([]byte{0xa5}, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
	testenv.Require(t, err == nil, "losetup: "+strings.TrimSpace(string(out)))
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", dev).Run() })
	devDir := filepath.Join(dir, "dev")
	if err := os.Mkdir(devDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dev, filepath.Join(devDir, "vda")); err != nil {
		t.Fatal(err)
	}
	return &Runner{
		DevDir: devDir,
		Disks:  func() []agentapi.Disk { return []agentapi.Disk{{Name: "vda", SizeBytes: size}} },
		HTTP:   &http.Client{},
		Resume: fastOpts(),
	}, dev
}

func readDev(t *testing.T, dev string, n int) []byte {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(f, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProvisionChunksBlockDevice provisions onto a loop device: chunks
// with O_DIRECT from aligned buffers, zero chunks with BLKZEROOUT, then a
// delta after one chunk changed on the device. An image whose size is
// not a multiple of the sector makes O_DIRECT refuse the last chunk: the
// writer falls back to buffered I/O and still completes.
func TestProvisionChunksBlockDevice(t *testing.T) {
	for _, c := range []struct {
		name   string
		raw    []byte
		direct string
	}{
		{"aligned", fixture(), "direct=true"},
		{"odd size", append(bytes.Clone(fixture()), 0x42), "direct=false"},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := c.raw
			r, dev := loopDisk(t, 8<<20)
			cs := newChunkServer(t, raw)
			var logs syncBuffer
			r.Log = slog.New(slog.NewTextHandler(&logs, nil))
			res := r.RunTask(context.Background(), cs.task(false), func(agentapi.Progress) {})
			if !res.Success || res.SHA256 != sha(raw) || res.BytesSkipped != 0 {
				t.Fatalf("result %+v", res)
			}
			if got := readDev(t, dev, len(raw)); !bytes.Equal(got, raw) {
				t.Fatal("device differs from the raw image")
			}
			if line := logLine(logs.String(), "chunks written"); !strings.Contains(line, c.direct) {
				t.Errorf("the last log line does not say %s: %q", c.direct, line)
			}

			// Change chunk 9 through the device; a delta fetches it alone.
			f, err := os.OpenFile(dev, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.WriteAt([]byte("changed"), 9*testChunk+5)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			n := cs.chunkGets()
			res = r.RunTask(context.Background(), cs.task(true), func(agentapi.Progress) {})
			if !res.Success || res.BytesSkipped != int64(len(raw))-testChunk || cs.chunkGets()-n != 1 {
				t.Fatalf("delta: result %+v, %d chunks fetched", res, cs.chunkGets()-n)
			}
			if got := readDev(t, dev, len(raw)); !bytes.Equal(got, raw) {
				t.Fatal("device differs from the raw image after the delta")
			}
		})
	}
}

// logLine is the first line of logs that contains msg.
func logLine(logs, msg string) string {
	for l := range strings.Lines(logs) {
		if strings.Contains(l, msg) {
			return l
		}
	}
	return ""
}
