package tasks

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// TestProvisionChunksDelta re-images disks that already hold the image,
// or most of it: only what differs is fetched and written, the rest is
// counted as skipped, and the disk ends equal to the image.
func TestProvisionChunksDelta(t *testing.T) {
	raw := fixture()
	const data, zero = 9, 31 // a data chunk and a zero chunk of the fixture
	changed := func(i int) func([]byte) {
		return func(b []byte) { b[i*testChunk+77] ^= 0xff }
	}
	cases := []struct {
		name    string
		before  func(disk []byte) // edits a disk that holds the image
		fetched int               // chunk requests
		skipped int64
	}{
		{"identical", func([]byte) {}, 0, int64(len(raw))},
		{"one data chunk changed", changed(data), 1, int64(len(raw)) - testChunk},
		{"one zero chunk dirty", changed(zero), 0, int64(len(raw)) - testChunk},
		{"zero run dirty", func(b []byte) { changed(31)(b); changed(32)(b); changed(34)(b) }, 0, int64(len(raw)) - 3*testChunk},
		{"last partial chunk changed", func(b []byte) { b[len(raw)-1] ^= 1 }, 1, int64(len(raw)) - 20480},
		{"one place of a repeated chunk changed", changed(13), 1, int64(len(raw)) - testChunk},
		{"two chunks changed", func(b []byte) { changed(0)(b); changed(39)(b) }, 2, int64(len(raw)) - 2*testChunk},
		{"shorter disk file", nil, 1, int64(len(raw)) - 20480},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs := newChunkServer(t, raw)
			if cs.m.Chunks[data] == "" || cs.m.Chunks[zero] != "" {
				t.Fatal("fixture chunks are not what the cases assume")
			}
			r, disk := provisionSetup(t, 8<<20)
			img := append(bytes.Clone(raw), bytes.Repeat([]byte{0x5a}, 8<<20-len(raw))...)
			if c.before != nil {
				c.before(img)
			} else {
				img = img[:len(raw)-20480] // the file ends before the last chunk
			}
			if err := os.WriteFile(disk, img, 0o644); err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			r.Log = slog.New(slog.NewTextHandler(&logs, nil))
			var last agentapi.Progress
			res := r.RunTask(context.Background(), cs.task(true), func(p agentapi.Progress) { last = p })
			if want := fmt.Sprintf("delta: %d of %d bytes were already on the disk", c.skipped, len(raw)); !strings.Contains(logs.String(), want) {
				t.Errorf("the log does not say %q:\n%s", want, logs.String())
			}
			if !res.Success || res.SHA256 != sha(raw) || res.ManifestDigest != cs.m.Digest() {
				t.Fatalf("result %+v", res)
			}
			if res.BytesSkipped != c.skipped || res.BytesWritten != int64(len(raw)) || last.BytesSkipped != c.skipped {
				t.Errorf("skipped %d of %d (progress %d), want %d skipped", res.BytesSkipped, res.BytesWritten, last.BytesSkipped, c.skipped)
			}
			if n := cs.chunkGets(); n != c.fetched {
				t.Errorf("%d chunks fetched, want %d", n, c.fetched)
			}
			if got, _ := os.ReadFile(disk); !bytes.Equal(got, raw) {
				t.Fatal("disk differs from the raw image")
			}
		})
	}
}

// TestProvisionChunksTwice: a second provision of the same image onto
// the same disk fetches nothing and writes under 5 % of it.
func TestProvisionChunksTwice(t *testing.T) {
	raw := fixture()
	cs := newChunkServer(t, raw)
	r, disk := provisionSetup(t, 8<<20)
	first := r.RunTask(context.Background(), cs.task(true), func(agentapi.Progress) {})
	if !first.Success || first.BytesSkipped != 0 {
		t.Fatalf("first provision %+v", first)
	}
	n := cs.chunkGets()
	st1, err := os.Stat(disk)
	if err != nil {
		t.Fatal(err)
	}
	second := r.RunTask(context.Background(), cs.task(true), func(agentapi.Progress) {})
	if !second.Success || second.SHA256 != sha(raw) {
		t.Fatalf("second provision %+v", second)
	}
	if written := second.BytesWritten - second.BytesSkipped; written*20 >= second.BytesWritten {
		t.Errorf("the second provision wrote %d of %d bytes", written, second.BytesWritten)
	}
	if got := cs.chunkGets() - n; got != 0 {
		t.Errorf("the second provision fetched %d chunks", got)
	}
	if st2, err := os.Stat(disk); err != nil || !st2.ModTime().Equal(st1.ModTime()) {
		t.Errorf("the second provision modified the disk (mtime %v → %v, %v)", st1.ModTime(), st2.ModTime(), err)
	}
	if got, _ := os.ReadFile(disk); !bytes.Equal(got, raw) {
		t.Fatal("disk differs from the raw image")
	}
}
