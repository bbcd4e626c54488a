package tasks

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// SwarmClient is how the agent talks to metald's chunk tracker
// (agent.Client): one request, no retries (the caller decides).
type SwarmClient interface {
	Swarm(ctx context.Context, token string, req agentapi.SwarmRequest) (agentapi.SwarmResponse, error)
}

// swarmTask is what a provision by chunks needs to share them.
type swarmTask struct {
	cfg    agentapi.Swarm
	client SwarmClient
	taskID string
	token  string
	log    *slog.Logger
}

// trackerFailures is how many tracker requests in a row may fail before
// the agent fetches every chunk left from metald alone.
const trackerFailures = 3

// fetchItem is one chunk to fetch, from peer (nil: metald).
type fetchItem struct {
	digest string
	need   []int
	peer   *agentapi.Peer
	at     time.Time // dispatched
}

type fetchDone struct {
	fetchItem
	err error
}

// runSwarm writes the manifest's chunks with a wave: first what needs no
// network (delta, zero chunks), then the data chunks in the order the
// tracker assigns them, each from the peer it names or from metald,
// while serving the chunks verified so far to the other agents. A peer
// that fails is reported and the chunk assigned again; a tracker that
// cannot be reached leaves the agent to fetch the rest from metald.
func (w *chunkWriter) runSwarm(ctx context.Context, n int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pending := map[string][]int{} // data chunks to fetch → their places
	held := map[string]int{}      // verified on the disk → one place
	var mu sync.Mutex
	err := w.pool(ctx, n, w.jobs(), func(ctx context.Context, j chunkJob, raw []byte, _ *[]byte) error {
		need, err := w.local(ctx, j, raw)
		if err != nil || j.digest == "" {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if len(need) == 0 {
			held[j.digest] = j.index[0]
		} else {
			pending[j.digest] = need
		}
		return nil
	})
	if err != nil || len(pending) == 0 {
		return err
	}
	sw := w.swarm
	ps, err := startPeerServer(sw.cfg, w.base, w.m, w.tgt, sw.log)
	if err != nil {
		sw.log.Warn("not serving chunks to peers", "err", err)
	} else {
		defer func() { ps.close(); w.st.served.Store(ps.served.Load()) }()
		for d, i := range held {
			ps.hold(d, i)
		}
	}
	slots := max(1, min(cap(w.fetch.slots), n))
	work := make(chan fetchItem)
	done := make(chan fetchDone, slots)
	var wg sync.WaitGroup
	for range slots {
		wg.Go(func() {
			raw := alignedBuf(int(w.m.ChunkSize))
			var comp []byte
			for it := range work {
				err := w.fetchAndWrite(ctx, it.digest, it.need, raw, &comp, it.peer)
				if err == nil && ps != nil {
					ps.keep(it.digest, bytes.Clone(comp))
				}
				done <- fetchDone{it, err}
			}
		})
	}
	defer func() { close(work); cancel(nil); wg.Wait() }()

	req := agentapi.SwarmRequest{Version: agentapi.Version, TaskID: sw.taskID}
	if ps != nil {
		req.Port, req.Token = ps.port, ps.token
	}
	defer w.leave(req)
	inflight := map[string]bool{}
	newHave := slices.Collect(maps.Keys(held))
	var failed []agentapi.SwarmFailure
	sendAll, fails, alone, ask := true, 0, false, true
	var retry <-chan time.Time
	dispatch := func(it fetchItem) {
		it.at = time.Now()
		inflight[it.digest] = true
		work <- it
	}
	for len(pending) > 0 {
		switch {
		case alone:
			for _, d := range slices.Sorted(maps.Keys(pending)) {
				if len(inflight) < slots && !inflight[d] {
					dispatch(fetchItem{digest: d, need: pending[d]})
				}
			}
		case ask:
			ask = false
			r := req
			r.Want, r.Have, r.Failed = slots-len(inflight), newHave, failed
			if sendAll {
				r.Need, r.Have = slices.Collect(maps.Keys(pending)), slices.Collect(maps.Keys(held))
			}
			actx, acancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err := sw.client.Swarm(actx, sw.token, r)
			acancel()
			if err != nil {
				if fails++; fails >= trackerFailures {
					sw.log.Warn("chunk tracker unreachable: fetching the chunks left from metald alone", "err", err)
					alone = true
					continue
				}
				sw.log.Warn("chunk tracker request failed, retrying", "attempt", fails, "err", err)
				retry = time.After(time.Duration(fails) * 500 * time.Millisecond)
				break
			}
			fails, newHave, failed, sendAll = 0, nil, nil, false
			if resp.Resend {
				sendAll, ask = true, true
				continue
			}
			for _, a := range resp.Assign {
				need, ok := pending[a.Digest]
				if !ok || inflight[a.Digest] || len(inflight) >= slots {
					continue
				}
				it := fetchItem{digest: a.Digest, need: need}
				if len(a.Peers) > 0 {
					it.peer = &a.Peers[0]
				}
				dispatch(it)
			}
			if resp.RetryAfterMillis > 0 && len(inflight) < slots {
				retry = time.After(time.Duration(resp.RetryAfterMillis) * time.Millisecond)
			}
		}
		if !alone && !ask && retry == nil && len(inflight) == 0 {
			retry = time.After(250 * time.Millisecond) // never stall
		}
		select {
		case d := <-done:
			delete(inflight, d.digest)
			switch {
			case d.err == nil:
				from := "metald"
				if d.peer != nil {
					from = d.peer.Addr
				}
				sw.log.Debug("chunk verified", "digest", d.digest[:12], "from", from, "ms", time.Since(d.at).Milliseconds(), "left", len(pending)-1)
				held[d.digest] = d.need[0]
				if ps != nil {
					ps.hold(d.digest, d.need[0])
				}
				delete(pending, d.digest)
				newHave = append(newHave, d.digest)
			case d.peer != nil && ctx.Err() == nil:
				corrupt, busy := errors.Is(d.err, errRefused), errors.Is(d.err, errBusy)
				if busy {
					sw.log.Debug("peer busy; the tracker will name another source", "peer", d.peer.Addr)
				} else {
					sw.log.Warn("chunk from a peer failed; the tracker will name another source", "peer", d.peer.Addr, "corrupt", corrupt, "err", d.err)
				}
				failed = append(failed, agentapi.SwarmFailure{Digest: d.digest, Peer: d.peer.Addr, Corrupt: corrupt, Busy: busy, Error: d.err.Error()})
			default:
				return d.err
			}
			ask = true
		case <-retry:
			retry, ask = nil, true
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	if ps != nil && !alone {
		w.linger(ctx, req, newHave, failed)
	}
	return nil
}

// linger keeps serving, once every chunk is written, while the tracker
// says this agent holds the only copy of chunks others still need (up
// to Swarm.LingerSeconds): a wave must not lose a chunk to the first
// machine that finishes.
func (w *chunkWriter) linger(ctx context.Context, req agentapi.SwarmRequest, have []string, failed []agentapi.SwarmFailure) {
	sw := w.swarm
	limit := time.Duration(sw.cfg.LingerSeconds) * time.Second
	if limit <= 0 {
		limit = 30 * time.Second
	}
	start := time.Now()
	for time.Since(start) < limit {
		r := req
		r.Have, r.Failed = have, failed
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := sw.client.Swarm(actx, sw.token, r)
		cancel()
		if err != nil || !resp.Stay {
			break
		}
		if have != nil {
			sw.log.Info("every chunk written; serving the chunks only this machine holds until a peer has them", "limit", limit)
		}
		have, failed = nil, nil
		if sleep(ctx, time.Duration(max(resp.RetryAfterMillis, 100))*time.Millisecond) != nil {
			break
		}
	}
	if d := time.Since(start); d > time.Second {
		sw.log.Info("stopped serving peers", "lingered", d.Round(time.Millisecond))
	}
}

// leave tells the tracker this agent stops serving (best effort).
func (w *chunkWriter) leave(req agentapi.SwarmRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req.Leaving = true
	if _, err := w.swarm.client.Swarm(ctx, w.swarm.token, req); err != nil {
		w.swarm.log.Debug("leaving the wave", "err", err)
	}
}
