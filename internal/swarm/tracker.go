// Package swarm is metald's tracker for peer-to-peer chunk sharing: the
// machines writing the same chunk manifest at the same time form a wave;
// each tells the tracker which chunks it still needs and which it now
// holds, and the tracker answers which chunk to fetch next and from
// whom. The policy, in one place:
//
//   - rarest first: a chunk nobody holds and nobody is fetching comes
//     first (from metald, at most Config.SeedSlots at once per wave, so
//     that metald sends each chunk about once and at full speed; shared
//     out among the members, so that each starts at another machine),
//     then
//     the chunks held by the fewest peers;
//   - a chunk some peer holds is fetched from a peer (the least busy
//     one, each serving at most Config.PeerSlots at once), never from
//     metald, unless the agent has waited Config.WaitTimeout for it (a
//     peer too slow, or every holder busy);
//   - an agent that has every chunk stays (serving) while it holds the
//     only copy of a chunk another member still needs, or while machines
//     of the wave have not joined yet (Member.Expected), so that a wave
//     does not lose its chunks to the first machine that finishes (the
//     agent bounds how long: agentapi.Swarm.LingerSeconds);
//   - a peer that served corrupt data is dropped from the wave; one that
//     failed several fetches (gone: rebooted) is dropped too; one not
//     heard from for Config.Stale has left.
//
// The tracker keeps its state in memory: a restarted metald answers
// Resend and the agents tell it again. It knows nothing of HTTP or jobs
// beyond the numbers it is given.
package swarm

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// Config tunes the tracker; zero fields take the defaults noted.
type Config struct {
	// SeedSlots bounds the chunks metald serves at once to one wave (4).
	SeedSlots int
	// PeerSlots bounds the fetches assigned to one peer at once (4; an
	// agent serves agentapi.Swarm.MaxConns at once).
	PeerSlots int
	// WaitTimeout is how long an agent waits for a chunk that others are
	// fetching, or whose holders are busy or failed it, before metald
	// serves it to that agent (20 s).
	WaitTimeout time.Duration
	// Stale: a member not heard from for this long has left (45 s).
	Stale time.Duration
	// AssignTimeout: an assignment not reported done or failed after
	// this long is forgotten (3 min).
	AssignTimeout time.Duration
	// ExcludeFor: a peer that failed an agent is not offered to that
	// agent again for this long (1 min).
	ExcludeFor time.Duration
	// MaxFailures: a peer that failed this many fetches (not corrupt
	// data: refused connections, timeouts) is dropped (3).
	MaxFailures int
	// RetryAfter is how soon an agent left waiting asks again (100 ms).
	RetryAfter time.Duration
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.SeedSlots <= 0 {
		c.SeedSlots = 4
	}
	if c.PeerSlots <= 0 {
		c.PeerSlots = 4
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = 3
	}
	def(&c.WaitTimeout, 20*time.Second)
	def(&c.Stale, 45*time.Second)
	def(&c.AssignTimeout, 3*time.Minute)
	def(&c.ExcludeFor, time.Minute)
	def(&c.RetryAfter, 100*time.Millisecond)
	return c
}

// Member is who is asking: a job's agent, from the address its requests
// come from (bound to the machine by the agent API's guard).
type Member struct {
	Job     int64
	Machine string
	// Wave is the chunk manifest's digest: the machines writing it now.
	Wave string
	Addr netip.Addr
	// Expected lists the jobs of the wave not finished yet (their
	// machines powering on, booting or writing): a member with every
	// chunk stays while some of them have not joined. The caller fills it
	// in when the member needs nothing.
	Expected []int64
}

// Drop is a peer the tracker removed from a wave for what it did.
type Drop struct {
	Wave    string
	Job     int64
	Machine string
	Peer    string // addr:port
	// Corrupt: it served data that was not the chunk; otherwise it
	// failed MaxFailures fetches (gone, or refusing).
	Corrupt    bool
	Reason     string
	ReportedBy string // the machine whose agent reported it
}

// Tracker is safe for concurrent use.
type Tracker struct {
	cfg   Config
	now   func() time.Time
	mu    sync.Mutex
	waves map[string]*wave
	wave  map[int64]string // job → its wave
	stats Stats
}

// Stats count what the tracker assigned and dropped.
type Stats struct {
	FromPeers, FromMetald, Dropped int64
}

// New returns a tracker; now is the clock (time.Now when nil).
func New(cfg Config, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{cfg: cfg.withDefaults(), now: now, waves: map[string]*wave{}, wave: map[int64]string{}}
}

// Stats returns the counts so far.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// Exchange records what req reports and answers the next chunks for m to
// fetch, with the peers it removed for what req reported.
func (t *Tracker) Exchange(m Member, req agentapi.SwarmRequest) (agentapi.SwarmResponse, []Drop) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if old, ok := t.wave[m.Job]; ok && old != m.Wave {
		t.leave(m.Job)
	}
	w := t.waves[m.Wave]
	if w == nil {
		w = newWave(m.Wave)
		t.waves[m.Wave] = w
	}
	w.expire(now, t.cfg)
	p := w.peers[m.Job]
	if p == nil {
		if req.Leaving {
			return agentapi.SwarmResponse{}, nil
		}
		if len(req.Need) == 0 {
			return agentapi.SwarmResponse{Resend: true}, nil
		}
		p = &peer{job: m.Job, machine: m.Machine, need: map[string]bool{}, have: map[string]bool{},
			inflight: map[string]assignment{}, waiting: map[string]time.Time{}, exclude: map[netip.AddrPort]time.Time{}}
		w.peers[m.Job] = p
		t.wave[m.Job] = m.Wave
	}
	p.seen = now
	p.addr, p.token = netip.AddrPort{}, ""
	if req.Port != 0 {
		p.addr, p.token = netip.AddrPortFrom(m.Addr.Unmap(), uint16(req.Port)), req.Token
	}
	if len(req.Need) > 0 {
		clear(p.need)
		for _, d := range req.Need {
			p.need[d] = true
		}
		for d := range p.inflight {
			if !p.need[d] {
				w.finish(p, d) // no longer needed: not fetching it either
			}
		}
	}
	for _, d := range req.Have {
		w.finish(p, d)
		delete(p.need, d)
		delete(p.waiting, d)
		p.have[d] = true
		w.hold(d, p.job)
	}
	var drops []Drop
	for _, f := range req.Failed {
		w.finish(p, f.Digest)
		if d, ok := w.failed(p, f, now, t.cfg); ok {
			d.ReportedBy = m.Machine
			drops = append(drops, d)
		}
	}
	t.stats.Dropped += int64(len(drops))
	if req.Leaving {
		t.leave(m.Job)
		return agentapi.SwarmResponse{}, drops
	}
	resp := w.assign(p, min(req.Want, 64), now, t.cfg, &t.stats)
	if len(p.need) == 0 && p.addr.IsValid() && ((len(p.have) > 0 && w.missing(m.Expected) > 0) || w.soleHolder(p)) {
		resp.Stay, resp.RetryAfterMillis = true, int(t.cfg.RetryAfter/time.Millisecond)
	}
	return resp, drops
}

// Leave removes a job's agent from its wave (its task ended).
func (t *Tracker) Leave(job int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.leave(job)
}

func (t *Tracker) leave(job int64) {
	key, ok := t.wave[job]
	if !ok {
		return
	}
	delete(t.wave, job)
	w := t.waves[key]
	if w == nil {
		return
	}
	w.remove(job)
	if len(w.peers) == 0 {
		delete(t.waves, key)
	}
}

// Members returns how many agents each wave has (for metrics and tests).
func (t *Tracker) Members() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.waves))
	for k, w := range t.waves {
		out[k] = len(w.peers)
	}
	return out
}

// shuffled returns keys in random order (ties between equally rare
// chunks and equally busy peers are broken at random, so that a wave
// spreads out instead of every agent asking for the same chunk).
func shuffled[K comparable, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return keys
}
