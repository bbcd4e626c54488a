package tasks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metal-iaas/metal/internal/swarm"
	"github.com/metal-iaas/metal/pkg/agentapi"
)

// trackerClient is metald's side of PathSwarm for tests: a real
// swarm.Tracker, every agent on 127.0.0.1, one job per agent.
type trackerClient struct {
	tr    *swarm.Tracker
	wave  string
	job   int64
	mu    *sync.Mutex
	drops *[]swarm.Drop
	calls atomic.Int32
}

func (c *trackerClient) Swarm(_ context.Context, _ string, req agentapi.SwarmRequest) (agentapi.SwarmResponse, error) {
	c.calls.Add(1)
	if err := req.Validate(); err != nil {
		return agentapi.SwarmResponse{}, err
	}
	resp, drops := c.tr.Exchange(swarm.Member{Job: c.job, Machine: fmt.Sprint("m", c.job), Wave: c.wave,
		Addr: netip.MustParseAddr("127.0.0.1")}, req)
	c.mu.Lock()
	*c.drops = append(*c.drops, drops...)
	c.mu.Unlock()
	return resp, nil
}

// wave is n agents provisioning cs's image at once with a tracker.
type waveRun struct {
	tr    *swarm.Tracker
	mu    sync.Mutex
	drops []swarm.Drop
}

func (w *waveRun) client(cs *chunkServer, job int64) *trackerClient {
	return &trackerClient{tr: w.tr, wave: cs.m.Digest(), job: job, mu: &w.mu, drops: &w.drops}
}

func waveTask(cs *chunkServer, id string) agentapi.Task {
	t := cs.task(false)
	t.ID = id
	t.Image.Swarm = &agentapi.Swarm{MaxConns: 4}
	return t
}

// TestSwarmWave: six agents write the same image at once, sharing
// chunks: every disk is the image, metald (the chunk server) serves
// about one copy of the chunks instead of six, and the rest came from
// peers.
func TestSwarmWave(t *testing.T) {
	raw := fixture()
	cs := newChunkServer(t, raw)
	// metald's link is the bottleneck (25 ms a chunk), as in a real
	// wave: the agents all join while the first chunks arrive.
	cs.bad = func(string, int) (int, []byte) { time.Sleep(25 * time.Millisecond); return 0, nil }
	w := &waveRun{tr: swarm.New(swarm.Config{SeedSlots: 2}, nil)}
	const n = 6
	results := make([]agentapi.Result, n)
	disks := make([]string, n)
	runners := make([]*Runner, n)
	for i := range n {
		runners[i], disks[i] = provisionSetup(t, 8<<20)
		runners[i].Swarm = w.client(cs, int64(i+1))
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range runners {
		wg.Go(func() {
			<-start // one wave: every agent starts at once
			results[i] = r.RunTask(context.Background(), waveTask(cs, fmt.Sprint(i+1)), func(agentapi.Progress) {})
		})
	}
	close(start)
	wg.Wait()
	var fromPeers, fromServer, served int64
	for i, res := range results {
		if !res.Success {
			t.Fatalf("agent %d: %+v", i+1, res)
		}
		if got, _ := os.ReadFile(disks[i]); !bytes.Equal(got, raw) {
			t.Fatalf("agent %d: disk differs from the image", i+1)
		}
		fromPeers += res.BytesFromPeers
		fromServer += res.BytesFromServer
		served += res.BytesServed
	}
	var image int64
	for _, z := range cs.chunks {
		image += int64(len(z))
	}
	gets := cs.chunkGets()
	t.Logf("%d agents: %d chunk requests to metald for %d distinct chunks; bytes from metald %d, from peers %d, served %d (image %d compressed)",
		n, gets, len(cs.chunks), fromServer, fromPeers, served, image)
	if gets > 2*len(cs.chunks) {
		t.Errorf("metald served %d chunks, want at most twice the %d distinct ones (not %d agents × them)", gets, len(cs.chunks), n)
	}
	if fromPeers == 0 || fromPeers != served {
		t.Errorf("bytes from peers %d, bytes served by peers %d: want equal and more than zero", fromPeers, served)
	}
	if len(w.drops) != 0 {
		t.Errorf("peers dropped in an honest wave: %+v", w.drops)
	}
	if m := w.tr.Members(); len(m) != 0 {
		t.Errorf("wave members left after every agent finished: %v", m)
	}
}

// fakePeer joins the wave claiming to hold every chunk and serves what
// serve says.
func fakePeer(t *testing.T, w *waveRun, cs *chunkServer, job int64, serve http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if serve != nil {
		srv := &http.Server{Handler: serve}
		go srv.Serve(ln) //nolint:errcheck
		t.Cleanup(func() { srv.Close() })
	} else {
		ln.Close() // nothing listens: connection refused
	}
	var all []string
	for d := range cs.chunks {
		all = append(all, d)
	}
	c := w.client(cs, job)
	if _, err := c.Swarm(context.Background(), "", agentapi.SwarmRequest{Version: agentapi.Version, TaskID: "x",
		Port: port, Token: "fake-peer-token-0123", Need: all[:1], Have: all}); err != nil {
		t.Fatal(err)
	}
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String()
}

// TestSwarmBadPeers: a peer that serves corrupt chunks is refused,
// reported and dropped (evented by metald as security.peer_corrupt); one
// that is gone (connection refused) is dropped after failures; the agent
// writes the right disk either way, the chunks refetched elsewhere.
func TestSwarmBadPeers(t *testing.T) {
	raw := fixture()
	cs := newChunkServer(t, raw)
	for _, c := range []struct {
		name    string
		serve   http.HandlerFunc
		corrupt bool
	}{
		{"corrupt", func(w http.ResponseWriter, r *http.Request) {
			d := strings.TrimPrefix(r.URL.Path, agentapi.PeerChunkPath)
			good := cs.chunks[d]
			bad := zstdOf(t, bytes.Repeat([]byte{7}, testChunk)) // valid zstd, wrong bytes
			if good == nil {
				bad = []byte("garbage")
			}
			_, _ = w.Write(bad)
		}, true},
		{"gone", nil, false},
		{"answers 500", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "disk on fire", http.StatusInternalServerError)
		}, false},
		{"dies mid-transfer", func(w http.ResponseWriter, r *http.Request) {
			z := cs.chunks[strings.TrimPrefix(r.URL.Path, agentapi.PeerChunkPath)]
			w.Header().Set("Content-Length", fmt.Sprint(len(z)))
			_, _ = w.Write(z[:len(z)/2])
			panic(http.ErrAbortHandler) // the connection is cut half way
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &waveRun{tr: swarm.New(swarm.Config{SeedSlots: 2, MaxFailures: 1}, nil)}
			bad := fakePeer(t, w, cs, 99, c.serve)
			r, disk := provisionSetup(t, 8<<20)
			r.Swarm = w.client(cs, 1)
			res := r.RunTask(context.Background(), waveTask(cs, "1"), func(agentapi.Progress) {})
			if !res.Success {
				t.Fatalf("result %+v", res)
			}
			if got, _ := os.ReadFile(disk); !bytes.Equal(got, raw) {
				t.Fatal("disk differs from the image")
			}
			if len(w.drops) != 1 || w.drops[0].Peer != bad || w.drops[0].Corrupt != c.corrupt || w.drops[0].ReportedBy != "m1" {
				t.Fatalf("drops %+v, want %s dropped (corrupt %v) reported by m1", w.drops, bad, c.corrupt)
			}
			t.Logf("dropped: %s", w.drops[0].Reason)
		})
	}
}

// TestSwarmTrackerDown: a tracker that cannot be reached leaves the
// agent fetching every chunk from metald, and the provision succeeds.
func TestSwarmTrackerDown(t *testing.T) {
	raw := fixture()
	cs := newChunkServer(t, raw)
	r, disk := provisionSetup(t, 8<<20)
	var calls atomic.Int32
	r.Swarm = swarmFunc(func(context.Context, string, agentapi.SwarmRequest) (agentapi.SwarmResponse, error) {
		calls.Add(1)
		return agentapi.SwarmResponse{}, errors.New("connection refused")
	})
	res := r.RunTask(context.Background(), waveTask(cs, "1"), func(agentapi.Progress) {})
	if !res.Success {
		t.Fatalf("result %+v", res)
	}
	if got, _ := os.ReadFile(disk); !bytes.Equal(got, raw) {
		t.Fatal("disk differs from the image")
	}
	if n := calls.Load(); n < trackerFailures {
		t.Errorf("%d tracker calls, want %d tries before going alone", n, trackerFailures)
	}
}

type swarmFunc func(context.Context, string, agentapi.SwarmRequest) (agentapi.SwarmResponse, error)

func (f swarmFunc) Swarm(ctx context.Context, tok string, r agentapi.SwarmRequest) (agentapi.SwarmResponse, error) {
	return f(ctx, tok, r)
}

// TestPeerServerRefuses: the chunk server of an agent answers only with
// its token, only chunks it verified, only GET, and no more at once than
// its connection bound (TestPeerServerBounds).
func TestPeerServerRefuses(t *testing.T) {
	cs, tgt, ps := servingAgent(t, agentapi.Swarm{MaxConns: 4})
	var held, other string
	for i, d := range cs.m.Chunks {
		if d != "" && held == "" {
			held = d
			ps.hold(d, i)
		} else if d != "" && d != held {
			other = d
		}
	}
	base := "http://" + ps.ln.Addr().String() + agentapi.PeerChunkPath
	get := func(method, digest, token string) int {
		req, _ := http.NewRequest(method, base+digest, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		name, method, digest, token string
		want                        int
	}{
		{"no token", "GET", held, "", 401},
		{"wrong token", "GET", held, strings.Repeat("0", 32), 401},
		{"not held", "GET", other, ps.token, 404},
		{"not a digest", "GET", "../../etc/passwd", ps.token, 404},
		{"post", "POST", held, ps.token, 405},
		{"held", "GET", held, ps.token, 200},
	} {
		if got := get(c.method, c.digest, c.token); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	// A chunk overwritten on the disk is not served.
	zero := alignedBuf(testChunk)
	for i, d := range cs.m.Chunks {
		if d == held {
			if err := tgt.writeAt(zero, int64(i)*cs.m.ChunkSize); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if got := get("GET", held, ps.token); got != 500 {
		t.Errorf("chunk no longer on the disk: status %d, want 500", got)
	}
	// The verified bytes kept from the wire are served without the disk.
	for i, d := range cs.m.Chunks {
		if d == held {
			ps.hold(d, i)
		}
	}
	ps.keep(held, cs.chunks[held])
	if got := get("GET", held, ps.token); got != 200 {
		t.Errorf("chunk kept in memory: status %d, want 200", got)
	}
}

// TestPeerServerBounds: a request beyond MaxConns is answered 503 at
// once, and the upload rate bound holds a chunk's transfer back.
func TestPeerServerBounds(t *testing.T) {
	const rate = 32 << 10
	cs, _, ps := servingAgent(t, agentapi.Swarm{MaxConns: 1, UploadBytesPerSec: rate})
	var held string
	for i, d := range cs.m.Chunks {
		if d != "" {
			held = d
			ps.hold(d, i)
			break
		}
	}
	get := func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", "http://"+ps.ln.Addr().String()+agentapi.PeerChunkPath+held, nil)
		req.Header.Set("Authorization", "Bearer "+ps.token)
		return http.DefaultClient.Do(req)
	}
	start := time.Now()
	slow := make(chan int64, 1)
	go func() {
		resp, err := get()
		if err != nil {
			slow <- -1
			return
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		slow <- n
	}()
	for len(ps.sem) == 0 {
		time.Sleep(time.Millisecond)
	}
	resp, err := get()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second request while one is served: %s, want 503 with Retry-After", resp.Status)
	}
	n := <-slow
	took := time.Since(start)
	// The first 32 KiB go at once (the burst); the rest at the rate.
	if min := time.Duration(float64(n-rate) / rate * float64(time.Second)); n <= rate || took < min*8/10 {
		t.Errorf("%d bytes in %v at %d bytes/s: want at least %v", n, took, rate, min)
	}
}

// TestSwarmResumeFromDisk: an agent restarted mid-wave (its task handed
// out again with delta) keeps what its disk holds, offers those chunks to
// the wave at once and fetches only the rest.
func TestSwarmResumeFromDisk(t *testing.T) {
	raw := fixture()
	cs := newChunkServer(t, raw)
	r, disk := provisionSetup(t, 8<<20)
	// The first half of the image is on the disk already.
	half := raw[:len(raw)/2]
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(half, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var first agentapi.SwarmRequest
	var once sync.Once
	w := &waveRun{tr: swarm.New(swarm.Config{}, nil)}
	c := w.client(cs, 1)
	r.Swarm = swarmFunc(func(ctx context.Context, tok string, req agentapi.SwarmRequest) (agentapi.SwarmResponse, error) {
		once.Do(func() { first = req })
		return c.Swarm(ctx, tok, req)
	})
	task := waveTask(cs, "1")
	task.Image.Delta = true
	before := cs.chunkGets()
	res := r.RunTask(context.Background(), task, func(agentapi.Progress) {})
	if !res.Success {
		t.Fatalf("result %+v", res)
	}
	if got, _ := os.ReadFile(disk); !bytes.Equal(got[:len(raw)], raw) {
		t.Fatal("disk differs from the image")
	}
	fetched := cs.chunkGets() - before
	if res.BytesSkipped < int64(len(half))-testChunk || fetched >= len(cs.chunks) {
		t.Fatalf("skipped %d bytes (half is %d), fetched %d of %d distinct chunks", res.BytesSkipped, len(half), fetched, len(cs.chunks))
	}
	if len(first.Have) == 0 || len(first.Need) == 0 {
		t.Fatalf("first swarm request: have %d, need %d: want the chunks on the disk offered and the rest asked for", len(first.Have), len(first.Need))
	}
	t.Logf("resumed: %d bytes kept, %d chunk fetches, %d chunks offered to the wave at once", res.BytesSkipped, fetched, len(first.Have))
}

// servingAgent provisions the fixture onto a disk and starts a chunk
// server over it with cfg (no chunk held yet).
func servingAgent(t *testing.T, cfg agentapi.Swarm) (*chunkServer, *chunkTarget, *peerServer) {
	t.Helper()
	cs := newChunkServer(t, fixture())
	r, disk := provisionSetup(t, 8<<20)
	if res := r.RunTask(context.Background(), cs.task(false), func(agentapi.Progress) {}); !res.Success {
		t.Fatalf("result %+v", res)
	}
	tgt, err := openChunkTarget(disk, cs.m.Size, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tgt.Close() })
	ps, err := startPeerServer(cfg, cs.URL, cs.m, tgt, r.log())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ps.close)
	return cs, tgt, ps
}
