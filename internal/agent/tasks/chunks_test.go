package tasks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/imaging"
)

// TestProvisionChunks writes a manifest's chunks onto a disk that held
// something else: the disk then equals the raw image byte for byte (zero
// chunks read as zeros), zero chunks were never fetched, and the result
// carries the manifest's digests.
func TestProvisionChunks(t *testing.T) {
	raw := fixture()
	cs := newChunkServer(t, raw)
	if sum := sha256.Sum256(cs.manifest); hex.EncodeToString(sum[:]) != cs.m.Digest() {
		t.Fatal("Manifest.Digest is not the SHA-256 of the manifest's JSON as served")
	}
	for _, c := range []struct {
		name string
		opts ChunkOptions
	}{
		{"defaults", ChunkOptions{}},
		{"one worker", ChunkOptions{Fetches: 1, Workers: 1, ProgressEvery: time.Millisecond}},
		{"memory for one chunk", ChunkOptions{Memory: 1}},
		{"many", ChunkOptions{Fetches: 16, Workers: 16}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, conns := cs.chunkGets(), cs.conns.Load()
			r, disk := provisionSetup(t, 8<<20)
			r.Chunks = c.opts
			var ps []agentapi.Progress
			res := r.RunTask(context.Background(), cs.task(false), func(p agentapi.Progress) { ps = append(ps, p) })
			if !res.Success {
				t.Fatalf("result %+v", res)
			}
			if res.SHA256 != sha(raw) || res.ManifestDigest != cs.m.Digest() || res.Disk != disk ||
				res.BytesWritten != int64(len(raw)) || res.BytesSkipped != 0 {
				t.Errorf("result %+v", res)
			}
			got, _ := os.ReadFile(disk)
			if !bytes.Equal(got, raw) {
				t.Fatalf("disk (%d bytes) differs from the %d-byte raw image", len(got), len(raw))
			}
			// Zero chunks are never fetched, repeated ones once.
			if n := cs.chunkGets() - before; n != len(cs.chunks) || len(cs.chunks) >= dataChunks(cs.m) {
				t.Errorf("%d chunk requests for %d distinct chunks (%d data chunks)", n, len(cs.chunks), dataChunks(cs.m))
			}
			// The downloads in flight keep their connections.
			if n, fetches := cs.conns.Load()-conns, c.opts.withDefaults().Fetches; int(n) > 2*fetches+2 {
				t.Errorf("%d connections for %d downloads in flight", n, fetches)
			}
			var prev int64
			writing := 0
			for _, p := range ps {
				if p.Phase == agentapi.PhaseWriting {
					writing++
				}
				if p.BytesWritten < prev || p.BytesWritten > p.Total || p.BytesSkipped != 0 {
					t.Fatalf("progress went from %d to %+v", prev, p)
				}
				prev = p.BytesWritten
			}
			if c.opts.ProgressEvery > 0 && writing == 0 {
				t.Error("no progress while writing")
			}
			last := ps[len(ps)-1]
			if last.Phase != agentapi.PhaseDone || last.BytesWritten != int64(len(raw)) || last.Total != int64(len(raw)) || last.BytesRead <= 0 {
				t.Errorf("last progress %+v", last)
			}
		})
	}
}

// TestProvisionChunksCorrupt: a chunk served bad once is refused (and
// logged) and fetched again, so is one answered with a 5xx or not at
// all (dropped after the idle timeout); one always bad fails the task
// with an error naming it.
func TestProvisionChunksCorrupt(t *testing.T) {
	raw := fixture()
	const victim = 2
	flipped := bytes.Clone(raw[victim*testChunk : (victim+1)*testChunk])
	flipped[100] ^= 1
	cases := []struct {
		name   string
		status int
		body   func(t *testing.T) []byte
		always bool
		log    string
	}{
		{"wrong digest", 200, func(t *testing.T) []byte { return zstdOf(t, flipped) }, false, "chunk refused"},
		{"not zstd", 200, func(*testing.T) []byte { return []byte("<html>proxy error</html>") }, false, "chunk refused"},
		{"too long", 200, func(t *testing.T) []byte { return zstdOf(t, append(bytes.Clone(flipped), 1)) }, false, "chunk refused"},
		{"truncated", 200, func(t *testing.T) []byte { return zstdOf(t, flipped[:1000]) }, false, "chunk refused"},
		{"503", 503, func(*testing.T) []byte { return []byte("busy") }, false, "request failed, retrying"},
		{"stalls", -1, nil, false, "context canceled"},
		{"always bad", 200, func(t *testing.T) []byte { return zstdOf(t, flipped) }, true, "chunk refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs := newChunkServer(t, raw)
			digest := cs.m.Chunks[victim]
			var body []byte
			if c.body != nil {
				body = c.body(t)
			}
			stalled := make(chan struct{})
			defer close(stalled)
			cs.bad = func(d string, n int) (int, []byte) {
				switch {
				case d != digest || n > 1 && !c.always:
					return 0, nil
				case c.status < 0:
					<-stalled // no answer until the test ends
					return 0, nil
				}
				return c.status, body
			}
			r, disk := provisionSetup(t, 8<<20)
			if c.status < 0 {
				r.Resume.IdleTimeout = 300 * time.Millisecond
			}
			var logs syncBuffer
			r.Log = slog.New(slog.NewTextHandler(&logs, nil))
			res := r.RunTask(context.Background(), cs.task(false), func(agentapi.Progress) {})
			if !strings.Contains(logs.String(), c.log) {
				t.Errorf("no %q in the log:\n%s", c.log, logs.String())
			}
			if c.always {
				want := "chunk 2 (" + digest + ") at offset 131072: refused 4 times"
				if res.Success || !strings.Contains(res.Error, want) {
					t.Fatalf("result %+v, want an error with %q", res, want)
				}
				if n := cs.getsOf(digest); n != 4 {
					t.Errorf("the bad chunk was fetched %d times, want 4", n)
				}
				return
			}
			if !res.Success || res.SHA256 != sha(raw) {
				t.Fatalf("result %+v", res)
			}
			if n := cs.getsOf(digest); n != 2 {
				t.Errorf("the chunk served bad once was fetched %d times, want 2", n)
			}
			if got := readDisk(t, disk, len(raw)); !bytes.Equal(got, raw) {
				t.Fatal("disk differs from the raw image")
			}
		})
	}
}

// TestProvisionChunksManifestRefused: a manifest that is not the one the
// task names, or does not fit the task, is refused before anything is
// written to the disk.
func TestProvisionChunksManifestRefused(t *testing.T) {
	raw := fixture()
	cases := []struct {
		name string
		edit func(cs *chunkServer, img *agentapi.Image)
		want string
	}{
		{"digest mismatch", func(_ *chunkServer, img *agentapi.Image) { img.ManifestDigest = strings.Repeat("ab", 32) }, "manifest sha256"},
		{"served bytes differ", func(cs *chunkServer, _ *agentapi.Image) { cs.manifest = append(cs.manifest, '\n') }, "task expects " + ""},
		{"virtual size", func(_ *chunkServer, img *agentapi.Image) { img.VirtualSize += 4096 }, "manifest describes"},
		{"raw sha256", func(_ *chunkServer, img *agentapi.Image) { img.SHA256 = strings.Repeat("0", 64) }, "manifest raw sha256"},
		{"no chunk url", func(_ *chunkServer, img *agentapi.Image) { img.ChunkURL = "" }, "no chunk url"},
		{"not json", func(cs *chunkServer, img *agentapi.Image) { cs.manifest = []byte("nope"); img.ManifestDigest = "" }, "manifest: invalid character"},
		{"invalid", func(cs *chunkServer, img *agentapi.Image) {
			cs.manifest = []byte(`{"version":1,"chunk_size":1000,"size":1000,"chunks":[""]}`)
			img.ManifestDigest = ""
		}, "invalid chunk manifest"},
		{"404", func(_ *chunkServer, img *agentapi.Image) { img.ManifestURL += "/missing" }, "404"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs := newChunkServer(t, raw)
			task := cs.task(false)
			c.edit(cs, task.Image)
			r, disk := provisionSetup(t, 8<<20)
			res := r.RunTask(context.Background(), task, func(agentapi.Progress) {})
			if res.Success || !strings.Contains(res.Error, c.want) {
				t.Fatalf("result %+v, want an error with %q", res, c.want)
			}
			if n := cs.chunkGets(); n != 0 {
				t.Errorf("%d chunks fetched", n)
			}
			if b, _ := os.ReadFile(disk); !bytes.Equal(b, bytes.Repeat([]byte{0x5a}, 8<<20)) {
				t.Fatal("the disk was written to")
			}
		})
	}
}

// TestChunkJobs: zero chunks go in runs of consecutive chunks (at most
// maxZeroRun), data chunks by digest with every place they occur.
func TestChunkJobs(t *testing.T) {
	long := make([]string, maxZeroRun+3)
	cases := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"empty", nil, ""},
		{"mixed", []string{"", "", "a", "", "a", "b", "", ""}, "[0 1] a[2 4] [3] b[5] [6 7]"},
		{"all data", []string{"a", "b", "a", "a"}, "a[0 2 3] b[1]"},
		{"long zero run", long, fmt.Sprintf("[0 … %d] [%d %d %d]", maxZeroRun-1, maxZeroRun, maxZeroRun+1, maxZeroRun+2)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := chunkWriter{m: &imaging.Manifest{Chunks: c.chunks}}
			var got []string
			for _, j := range w.jobs() {
				idx := fmt.Sprint(j.index)
				if len(j.index) > 10 {
					idx = fmt.Sprintf("[%d … %d]", j.index[0], j.index[len(j.index)-1])
				}
				got = append(got, j.digest+idx)
			}
			if s := strings.Join(got, " "); s != c.want {
				t.Errorf("jobs %s, want %s", s, c.want)
			}
		})
	}
}
