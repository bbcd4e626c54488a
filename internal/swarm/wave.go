package swarm

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// wave is the agents writing one manifest, and who holds and fetches
// which chunk.
type wave struct {
	key      string
	peers    map[int64]*peer
	holders  map[string]map[int64]bool // digest → jobs holding it
	fetching map[string]int            // digest → assignments in flight
	seedBusy int                       // assignments from metald in flight
}

// peer is one agent of a wave.
type peer struct {
	job      int64
	machine  string
	addr     netip.AddrPort // invalid: it serves nothing
	token    string
	need     map[string]bool
	have     map[string]bool
	inflight map[string]assignment
	uploads  int // fetches assigned to it in flight
	seeds    int // its fetches from metald in flight
	failures int
	seen     time.Time
	waiting  map[string]time.Time         // since when it waits for a chunk
	exclude  map[netip.AddrPort]time.Time // sources that failed it, until
}

// assignment is one chunk a peer is fetching; from 0 is metald.
type assignment struct {
	from int64
	at   time.Time
}

func newWave(key string) *wave {
	return &wave{key: key, peers: map[int64]*peer{}, holders: map[string]map[int64]bool{}, fetching: map[string]int{}}
}

func (w *wave) hold(d string, job int64) {
	h := w.holders[d]
	if h == nil {
		h = map[int64]bool{}
		w.holders[d] = h
	}
	h[job] = true
}

// finish ends p's assignment of d, if any.
func (w *wave) finish(p *peer, d string) {
	a, ok := p.inflight[d]
	if !ok {
		return
	}
	delete(p.inflight, d)
	if w.fetching[d]--; w.fetching[d] <= 0 {
		delete(w.fetching, d)
	}
	if a.from == 0 {
		w.seedBusy--
		p.seeds--
	} else if q := w.peers[a.from]; q != nil {
		q.uploads--
	}
}

// remove takes a peer out of the wave with everything it held and was
// fetching.
func (w *wave) remove(job int64) {
	p := w.peers[job]
	if p == nil {
		return
	}
	for d := range p.inflight {
		w.finish(p, d)
	}
	for d := range p.have {
		if h := w.holders[d]; h != nil {
			delete(h, job)
			if len(h) == 0 {
				delete(w.holders, d)
			}
		}
	}
	delete(w.peers, job)
}

// expire drops members not heard from and forgets stale assignments.
func (w *wave) expire(now time.Time, cfg Config) {
	for job, p := range w.peers {
		if now.Sub(p.seen) > cfg.Stale {
			w.remove(job)
			continue
		}
		for d, a := range p.inflight {
			if now.Sub(a.at) > cfg.AssignTimeout {
				w.finish(p, d)
			}
		}
	}
}

// soleHolder reports whether p holds the only copy of a chunk that
// another member still needs.
func (w *wave) soleHolder(p *peer) bool {
	if !p.addr.IsValid() {
		return false
	}
	for d := range p.have {
		if len(w.holders[d]) != 1 {
			continue
		}
		for _, q := range w.peers {
			if q != p && q.need[d] {
				return true
			}
		}
	}
	return false
}

// missing counts the jobs of expected that are not members (yet).
func (w *wave) missing(expected []int64) int {
	n := 0
	for _, j := range expected {
		if w.peers[j] == nil {
			n++
		}
	}
	return n
}

// byAddr finds the member serving at addr.
func (w *wave) byAddr(addr netip.AddrPort) *peer {
	for _, q := range w.peers {
		if q.addr == addr {
			return q
		}
	}
	return nil
}

// failed records that a fetch by p failed; it returns the peer dropped
// for it, if any.
func (w *wave) failed(p *peer, f agentapi.SwarmFailure, now time.Time, cfg Config) (Drop, bool) {
	if f.Peer == "" {
		return Drop{}, false // metald: nothing to learn
	}
	addr, err := netip.ParseAddrPort(f.Peer)
	if err != nil {
		return Drop{}, false
	}
	if f.Busy {
		return Drop{}, false // it serves others: ask it again later
	}
	p.exclude[addr] = now.Add(cfg.ExcludeFor)
	q := w.byAddr(addr)
	if q == nil || q == p {
		return Drop{}, false
	}
	d := Drop{Wave: w.key, Job: q.job, Machine: q.machine, Peer: f.Peer, Corrupt: f.Corrupt}
	if f.Corrupt {
		d.Reason = fmt.Sprintf("served chunk %s with bad data: %s", f.Digest, f.Error)
	} else if q.failures++; q.failures >= cfg.MaxFailures {
		d.Reason = fmt.Sprintf("%d fetches failed, last of chunk %s: %s", q.failures, f.Digest, f.Error)
	} else {
		return Drop{}, false
	}
	w.remove(q.job)
	return d, true
}

// candidate is a chunk p needs and is not fetching.
type candidate struct {
	digest  string
	rarity  int     // holders in the wave
	sources []*peer // holders p may fetch it from now, least busy first
	seed    bool    // metald may serve it
}

// assign picks up to want chunks for p: rarest first, from peers when
// one can serve, from metald when nobody holds or fetches the chunk (or
// p has waited too long), within metald's slots.
func (w *wave) assign(p *peer, want int, now time.Time, cfg Config, st *Stats) agentapi.SwarmResponse {
	var resp agentapi.SwarmResponse
	if want <= 0 {
		return resp
	}
	var cands []candidate
	waiting := false
	// metald's slots are shared out among the members, so that each
	// chunk it sends starts at a different machine and every uplink in
	// the wave works from the start (not one machine relaying them all).
	seedShare := max(1, (cfg.SeedSlots+len(w.peers)-1)/len(w.peers))
	for _, d := range shuffled(p.need) {
		if _, busy := p.inflight[d]; busy {
			continue
		}
		c := candidate{digest: d, rarity: len(w.holders[d])}
		for job := range w.holders[d] {
			q := w.peers[job]
			if q == nil || q == p || !q.addr.IsValid() || q.uploads >= cfg.PeerSlots || now.Before(p.exclude[q.addr]) {
				continue
			}
			c.sources = append(c.sources, q)
		}
		since, ok := p.waiting[d]
		c.seed = (c.rarity == 0 && w.fetching[d] == 0) || (ok && now.Sub(since) >= cfg.WaitTimeout)
		cands = append(cands, c)
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return a.rarity - b.rarity })
	for _, c := range cands {
		if len(resp.Assign) == want {
			waiting = true
			break
		}
		var from *peer
		// The sources' slots may have filled with this answer's earlier
		// assignments.
		c.sources = slices.DeleteFunc(c.sources, func(q *peer) bool { return q.uploads >= cfg.PeerSlots })
		switch {
		case len(c.sources) > 0:
			from = slices.MinFunc(c.sources, func(a, b *peer) int { return a.uploads - b.uploads })
		case c.seed && w.seedBusy < cfg.SeedSlots && p.seeds < seedShare:
		default:
			if _, ok := p.waiting[c.digest]; !ok {
				p.waiting[c.digest] = now
			}
			waiting = true
			continue
		}
		a := agentapi.SwarmAssignment{Digest: c.digest}
		if from != nil {
			from.uploads++
			p.inflight[c.digest] = assignment{from: from.job, at: now}
			a.Peers = []agentapi.Peer{{Addr: from.addr.String(), Token: from.token}}
			st.FromPeers++
		} else {
			w.seedBusy++
			p.seeds++
			p.inflight[c.digest] = assignment{at: now}
			st.FromMetald++
		}
		w.fetching[c.digest]++
		delete(p.waiting, c.digest)
		resp.Assign = append(resp.Assign, a)
	}
	if waiting {
		resp.RetryAfterMillis = int(cfg.RetryAfter / time.Millisecond)
	}
	return resp
}
