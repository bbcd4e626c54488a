package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/imaging"
)

// ChunkOptions tune a provision by chunks. Transient failures are
// repeated as the Runner's Resume options say.
type ChunkOptions struct {
	// Fetches is how many chunks are downloaded at once (4 when zero).
	Fetches int
	// Workers decompress, verify and write chunks besides those
	// downloading (GOMAXPROCS when zero: verification on every core).
	Workers int
	// BadRetries is how often a chunk that arrives corrupt is fetched
	// again before the task fails (3 when zero).
	BadRetries int
	// Memory bounds the chunk buffers (256 MiB when zero); it caps the
	// workers when chunks are large.
	Memory int64
	// ProgressEvery is the progress interval (1 s when zero).
	ProgressEvery time.Duration
}

func (o ChunkOptions) withDefaults() ChunkOptions {
	if o.Fetches <= 0 {
		o.Fetches = 4
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.BadRetries <= 0 {
		o.BadRetries = 3
	}
	if o.Memory <= 0 {
		o.Memory = 256 << 20
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = time.Second
	}
	return o
}

// chunkStats count a chunked provision's bytes, updated by the workers.
type chunkStats struct {
	done    atomic.Int64 // raw bytes in place: written, zeroed or skipped
	written atomic.Int64 // raw bytes of fetched chunks written
	zeroed  atomic.Int64 // raw bytes of zero chunks zeroed (or holes)
	skipped atomic.Int64 // raw bytes already on the disk (delta)
	fetched atomic.Int64 // chunks fetched and verified
	// compressed bytes of verified chunks from peers and from metald
	fromPeers, fromServer atomic.Int64
	served                atomic.Int64 // compressed bytes served to peers
}

// provisionChunks writes the image as the chunks of its manifest: the
// manifest is fetched and verified first (nothing is written before);
// then every chunk, in any order and several at once, is either found
// already on the disk (delta), zeroed (a zero chunk: never fetched) or
// fetched (once, however often it repeats), verified against its digest
// and written at its offsets. The raw SHA-256 reported is the
// manifest's: every chunk of it was verified.
func (r *Runner) provisionChunks(ctx context.Context, p provision, res *agentapi.Result) (agentapi.Progress, error) {
	img, co := p.img, r.Chunks.withDefaults()
	var last agentapi.Progress
	ro := r.Resume
	if ro.Client == nil {
		ro.Client = r.HTTP
	}
	if ro.Log == nil {
		ro.Log = p.log
	}
	ro = ro.withDefaults()
	var release func()
	ro.Client, release = keepAlive(ro.Client, co.Fetches)
	defer release()
	f := &fetcher{o: ro, badRetries: co.BadRetries, slots: make(chan struct{}, co.Fetches), log: p.log}
	m, digest, err := fetchManifest(ctx, f, img)
	if err != nil {
		return last, fmt.Errorf("provision: manifest %s: %w", img.ManifestURL, err)
	}
	f.received.Store(0) // BytesRead counts the chunks
	// A worker holds a raw chunk and, at worst, its compressed copy.
	workers := int(max(1, min(int64(co.Fetches+co.Workers), co.Memory/(2*m.ChunkSize))))
	f.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(workers), zstd.WithDecodeAllCapLimit(true),
		zstd.WithDecoderMaxMemory(uint64(m.ChunkSize)))
	if err != nil {
		return last, fmt.Errorf("provision: zstd: %w", err)
	}
	defer f.dec.Close()
	tgt, err := openChunkTarget(p.dev, m.Size, img.Delta)
	if err != nil {
		return last, fmt.Errorf("provision: %w", err)
	}
	defer tgt.Close()
	p.log.Info("writing chunks", "manifest_digest", digest, "chunks", len(m.Chunks), "chunk_size", m.ChunkSize,
		"data_bytes", m.DataBytes(), "workers", workers, "fetches", co.Fetches, "direct", tgt.direct.Load())

	var st chunkStats
	progress := func(phase agentapi.Phase) agentapi.Progress {
		pr := progressFrom(phase, f.received.Load(), st.done.Load(), m.Size, p.start)
		pr.BytesSkipped = st.skipped.Load()
		pr.BytesFromPeers = st.fromPeers.Load()
		return pr
	}
	stop := make(chan struct{})
	var ticker sync.WaitGroup
	ticker.Go(func() {
		t := time.NewTicker(co.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.report(progress(agentapi.PhaseWriting))
			}
		}
	})
	w := chunkWriter{m: m, base: strings.TrimRight(img.ChunkURL, "/"), tgt: tgt, fetch: f, delta: img.Delta, st: &st}
	if img.Swarm != nil && r.Swarm != nil {
		w.swarm = &swarmTask{cfg: *img.Swarm, client: r.Swarm, taskID: p.task.ID, token: p.task.Token, log: p.log}
	}
	err = w.run(ctx, workers)
	close(stop)
	ticker.Wait()
	res.BytesWritten, res.BytesSkipped = st.done.Load(), st.skipped.Load()
	res.BytesFromPeers, res.BytesFromServer, res.BytesServed = st.fromPeers.Load(), st.fromServer.Load(), st.served.Load()
	if err != nil {
		return last, fmt.Errorf("provision: write %s: %w", p.dev, err)
	}
	if err := tgt.finish(); err != nil {
		return last, fmt.Errorf("provision: %w", err)
	}
	res.SHA256, res.ManifestDigest = m.RawSHA256, digest
	last = progress(agentapi.PhaseVerifying)
	p.report(last)
	p.log.Info("chunks written", "sha256", m.RawSHA256, "bytes", m.Size, "fetched_chunks", st.fetched.Load(),
		"received_bytes", f.received.Load(), "written_bytes", st.written.Load(), "zeroed_bytes", st.zeroed.Load(),
		"skipped_bytes", st.skipped.Load(), "refused_chunks", f.refused.Load(), "direct", tgt.direct.Load(),
		"from_peers_bytes", st.fromPeers.Load(), "from_metald_bytes", st.fromServer.Load(), "served_bytes", st.served.Load())
	if img.Delta {
		p.log.Info(fmt.Sprintf("delta: %d of %d bytes were already on the disk", st.skipped.Load(), m.Size))
	}
	return last, nil
}

// chunkWriter puts every chunk of a manifest in place.
type chunkWriter struct {
	m     *imaging.Manifest
	base  string // chunk URL without a trailing slash
	tgt   *chunkTarget
	fetch *fetcher
	delta bool
	st    *chunkStats
	swarm *swarmTask // nil: every chunk from metald
}

// chunkJob is a run of zero chunks, or every place of one data chunk:
// a chunk that repeats is fetched once and written at each of its
// offsets.
type chunkJob struct {
	digest string
	index  []int
}

// maxZeroRun bounds the zero chunks zeroed in one job (one BLKZEROOUT).
const maxZeroRun = 256

// jobs groups the manifest's chunks by digest and consecutive zero
// chunks into runs, in disk order.
func (w *chunkWriter) jobs() []chunkJob {
	var jobs []chunkJob
	at := map[string]int{}
	for i, d := range w.m.Chunks {
		if d == "" {
			if k := len(jobs) - 1; k >= 0 && jobs[k].digest == "" && jobs[k].index[len(jobs[k].index)-1] == i-1 && len(jobs[k].index) < maxZeroRun {
				jobs[k].index = append(jobs[k].index, i)
				continue
			}
			jobs = append(jobs, chunkJob{index: []int{i}})
			continue
		}
		if j, ok := at[d]; ok {
			jobs[j].index = append(jobs[j].index, i)
			continue
		}
		at[d] = len(jobs)
		jobs = append(jobs, chunkJob{digest: d, index: []int{i}})
	}
	return jobs
}

// run puts every chunk in place with n workers: from metald in disk
// order, or, with a swarm, as its tracker assigns them (runSwarm).
func (w *chunkWriter) run(ctx context.Context, n int) error {
	if w.swarm != nil {
		return w.runSwarm(ctx, n)
	}
	return w.pool(ctx, n, w.jobs(), w.job)
}

// pool hands jobs in order to n workers, each with its own buffers; the
// first error stops them all and is returned.
func (w *chunkWriter) pool(ctx context.Context, n int, jobs []chunkJob, do func(context.Context, chunkJob, []byte, *[]byte) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan chunkJob)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			raw := alignedBuf(int(w.m.ChunkSize))
			var comp []byte
			for j := range next {
				if err := do(ctx, j, raw, &comp); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for _, j := range jobs {
		select {
		case next <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// job puts one chunk in place at each of its offsets, with raw
// (ChunkSize bytes, aligned) and comp as the worker's buffers. With
// delta, the places that already hold it are kept, and it is fetched
// only when some place does not.
func (w *chunkWriter) job(ctx context.Context, j chunkJob, raw []byte, comp *[]byte) error {
	need, err := w.local(ctx, j, raw)
	if err != nil || len(need) == 0 {
		return err
	}
	return w.fetchAndWrite(ctx, j.digest, need, raw, comp, nil)
}

// local does what job j needs without the network: with delta, it keeps
// the places that already hold the chunk; zero chunks are zeroed. It
// returns the places of a data chunk still to be fetched.
func (w *chunkWriter) local(ctx context.Context, j chunkJob, raw []byte) ([]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	need := j.index
	if w.delta {
		need = nil
		for _, i := range j.index {
			off, n := w.m.ChunkRange(i)
			if err := w.tgt.readAt(raw[:n], off); err != nil {
				return nil, fmt.Errorf("chunk %d at offset %d: reading the disk: %w", i, off, err)
			}
			if (j.digest == "" && allZero(raw[:n])) || (j.digest != "" && sha256Hex(raw[:n]) == j.digest) {
				w.st.skipped.Add(n)
				w.st.done.Add(n)
				continue
			}
			need = append(need, i)
		}
	}
	if len(need) == 0 || j.digest != "" {
		return need, nil
	}
	return nil, w.zero(need)
}

// fetchAndWrite fetches chunk digest — from peer when set, else from
// metald — verifies it and writes it at the places in need.
func (w *chunkWriter) fetchAndWrite(ctx context.Context, digest string, need []int, raw []byte, comp *[]byte, peer *agentapi.Peer) error {
	_, n := w.m.ChunkRange(need[0])
	raw = raw[:n:n]
	var err error
	if peer != nil {
		err = w.fetch.peerChunk(ctx, *peer, digest, raw, comp)
	} else {
		err = w.fetch.chunk(ctx, w.base+"/"+digest, digest, raw, comp)
	}
	if err != nil {
		off, _ := w.m.ChunkRange(need[0])
		return fmt.Errorf("chunk %d (%s) at offset %d: %w", need[0], digest, off, err)
	}
	if peer != nil {
		w.st.fromPeers.Add(int64(len(*comp)))
	} else {
		w.st.fromServer.Add(int64(len(*comp)))
	}
	w.st.fetched.Add(1)
	for _, i := range need {
		off, _ := w.m.ChunkRange(i)
		if err := w.tgt.writeAt(raw, off); err != nil {
			return fmt.Errorf("chunk %d at offset %d: %w", i, off, err)
		}
		w.st.written.Add(n)
		w.st.done.Add(n)
	}
	return nil
}

// zero zeroes the zero chunks in index (ascending), each run of
// consecutive ones at once.
func (w *chunkWriter) zero(index []int) error {
	for len(index) > 0 {
		k := 1
		for k < len(index) && index[k] == index[k-1]+1 {
			k++
		}
		off, _ := w.m.ChunkRange(index[0])
		last, n := w.m.ChunkRange(index[k-1])
		if err := w.tgt.zero(off, last+n-off); err != nil {
			return fmt.Errorf("zero chunks %d–%d at offset %d: %w", index[0], index[k-1], off, err)
		}
		w.st.zeroed.Add(last + n - off)
		w.st.done.Add(last + n - off)
		index = index[k:]
	}
	return nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
