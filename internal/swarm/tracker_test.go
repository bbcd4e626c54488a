package swarm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

const waveKey = "wave"

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_800_000_000, 0)} }
func digests(n int) []string         { return digestsFrom(0, n) }
func member(job int64) Member {
	return Member{Job: job, Machine: fmt.Sprint("m", job), Wave: waveKey, Addr: addrOf(job)}
}
func addrOf(job int64) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(job)}) }
func peerAddr(job int64) string   { return netip.AddrPortFrom(addrOf(job), 7000).String() }
func req(need []string, want int) agentapi.SwarmRequest {
	return agentapi.SwarmRequest{Version: agentapi.Version, TaskID: "1", Port: 7000, Token: "0123456789abcdef", Need: need, Want: want}
}

func digestsFrom(from, n int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		s := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		out = append(out, hex.EncodeToString(s[:]))
	}
	return out
}

func assigned(r agentapi.SwarmResponse) (fromMetald, fromPeers []string) {
	for _, a := range r.Assign {
		if len(a.Peers) == 0 {
			fromMetald = append(fromMetald, a.Digest)
		} else {
			fromPeers = append(fromPeers, a.Digest)
		}
	}
	return
}

// TestSeedSlotsThenPeers: metald serves at most SeedSlots chunks at once
// and each chunk once; a chunk an agent holds goes to the next agent
// from that agent, not from metald.
func TestSeedSlotsThenPeers(t *testing.T) {
	c := newClock()
	tr := New(Config{SeedSlots: 2}, c.now)
	ds := digests(8)
	ra, _ := tr.Exchange(member(1), req(ds, 4))
	seedA, peersA := assigned(ra)
	if len(seedA) != 2 || len(peersA) != 0 || ra.RetryAfterMillis == 0 {
		t.Fatalf("first agent: %+v, want 2 chunks from metald and a retry", ra)
	}
	rb, _ := tr.Exchange(member(2), req(ds, 4))
	if len(rb.Assign) != 0 || rb.RetryAfterMillis == 0 {
		t.Fatalf("second agent while metald's slots are busy: %+v, want nothing yet and a retry", rb)
	}
	// A holds its first chunk. With two members metald's two slots are
	// one each: A (still fetching one) gets none; B gets A's chunk from
	// A and a new one from metald.
	r := req(nil, 1)
	r.Have = seedA[:1]
	if ra, _ = tr.Exchange(member(1), r); len(ra.Assign) != 0 {
		t.Fatalf("first agent after one chunk: %+v, want nothing (its share of metald is in use)", ra)
	}
	rb, _ = tr.Exchange(member(2), req(nil, 4))
	seedB, peersB := assigned(rb)
	if len(peersB) != 1 || peersB[0] != seedA[0] || rb.Assign[slices.IndexFunc(rb.Assign, func(a agentapi.SwarmAssignment) bool { return len(a.Peers) > 0 })].Peers[0].Addr != peerAddr(1) {
		t.Fatalf("second agent: %+v, want chunk %s from %s", rb, seedA[0][:8], peerAddr(1))
	}
	if len(seedB) != 1 || slices.Contains(seedA, seedB[0]) {
		t.Fatalf("second agent: %+v, want one new chunk from metald", rb)
	}
	for _, a := range rb.Assign {
		if a.Peers != nil && a.Peers[0].Token != "0123456789abcdef" {
			t.Fatalf("peer token %q", a.Peers[0].Token)
		}
	}
}

// TestRarestFirst: of the chunks peers can serve, the one held by the
// fewest comes first.
func TestRarestFirst(t *testing.T) {
	c := newClock()
	tr := New(Config{SeedSlots: 1}, c.now)
	ds := digests(2)
	// Agents 1–3 hold ds[0]; agent 1 alone holds ds[1].
	for job := int64(1); job <= 3; job++ {
		r := req(ds, 0)
		r.Have = ds[:1]
		if job == 1 {
			r.Have = ds
		}
		tr.Exchange(member(job), r)
	}
	r, _ := tr.Exchange(member(4), req(ds, 1))
	if len(r.Assign) != 1 || r.Assign[0].Digest != ds[1] {
		t.Fatalf("got %+v, want the rarer chunk %s first", r, ds[1][:8])
	}
}

// TestPeerSlotsSpreadLoad: a peer serves at most PeerSlots at once and
// the least busy holder is chosen.
func TestPeerSlotsSpreadLoad(t *testing.T) {
	c := newClock()
	tr := New(Config{SeedSlots: 1, PeerSlots: 1}, c.now)
	ds := digests(1)
	for job := int64(1); job <= 2; job++ {
		r := req(ds, 0)
		r.Have = ds
		tr.Exchange(member(job), r)
	}
	r3, _ := tr.Exchange(member(3), req(ds, 1))
	r4, _ := tr.Exchange(member(4), req(ds, 1))
	r5, _ := tr.Exchange(member(5), req(ds, 1))
	if len(r3.Assign) != 1 || len(r4.Assign) != 1 || r3.Assign[0].Peers[0].Addr == r4.Assign[0].Peers[0].Addr {
		t.Fatalf("two fetchers, two holders with one slot each: %+v %+v, want one from each", r3, r4)
	}
	if len(r5.Assign) != 0 || r5.RetryAfterMillis == 0 {
		t.Fatalf("third fetcher with every holder busy: %+v, want to wait (not metald: a peer holds it)", r5)
	}
	// Waiting too long: metald serves it.
	c.add(21 * time.Second)
	r5, _ = tr.Exchange(member(5), req(nil, 1))
	if s, _ := assigned(r5); len(s) != 1 {
		t.Fatalf("after the wait timeout: %+v, want the chunk from metald", r5)
	}
}

// TestCorruptPeerDropped: a peer reported for bad data leaves the wave
// with everything it held; the reporter is offered another source.
func TestCorruptPeerDropped(t *testing.T) {
	c := newClock()
	tr := New(Config{}, c.now)
	ds := digests(1)
	r := req(ds, 0)
	r.Have = ds
	tr.Exchange(member(1), r)
	got, _ := tr.Exchange(member(2), req(ds, 1))
	if len(got.Assign) != 1 || len(got.Assign[0].Peers) != 1 {
		t.Fatalf("got %+v, want the chunk from agent 1", got)
	}
	r = req(nil, 1)
	r.Failed = []agentapi.SwarmFailure{{Digest: ds[0], Peer: peerAddr(1), Corrupt: true, Error: "sha256 mismatch"}}
	got, drops := tr.Exchange(member(2), r)
	if len(drops) != 1 || drops[0].Machine != "m1" || !drops[0].Corrupt || drops[0].ReportedBy != "m2" {
		t.Fatalf("drops %+v, want m1 dropped for corrupt data reported by m2", drops)
	}
	if s, _ := assigned(got); len(s) != 1 {
		t.Fatalf("after the corrupt peer: %+v, want the chunk from metald (nobody else holds it)", got)
	}
	if n := tr.Members()[waveKey]; n != 1 {
		t.Fatalf("wave has %d members, want 1 (the corrupt one gone)", n)
	}
	// The dropped agent is not known any more: it is told to resend.
	if got, _ := tr.Exchange(member(1), req(nil, 1)); !got.Resend {
		t.Fatalf("dropped agent asking again: %+v, want resend", got)
	}
}

// TestGonePeerDroppedAfterFailures: refused connections from a peer that
// rebooted count; after MaxFailures it is dropped.
func TestGonePeerDroppedAfterFailures(t *testing.T) {
	c := newClock()
	tr := New(Config{MaxFailures: 2}, c.now)
	ds := digests(1)
	r := req(ds, 0)
	r.Have = ds
	tr.Exchange(member(1), r)
	for job := int64(2); job <= 3; job++ {
		tr.Exchange(member(job), req(ds, 1))
		f := req(nil, 0)
		f.Failed = []agentapi.SwarmFailure{{Digest: ds[0], Peer: peerAddr(1), Error: "connection refused"}}
		_, drops := tr.Exchange(member(job), f)
		if want := job == 3; (len(drops) == 1) != want {
			t.Fatalf("after %d failures: drops %+v", job-1, drops)
		}
	}
	if tr.Stats().Dropped != 1 {
		t.Fatalf("stats %+v", tr.Stats())
	}
}

// TestStaleAndLeave: members not heard from leave; Leave removes at once.
func TestStaleAndLeave(t *testing.T) {
	c := newClock()
	tr := New(Config{}, c.now)
	ds := digests(2)
	tr.Exchange(member(1), req(ds, 0))
	tr.Exchange(member(2), req(ds, 0))
	tr.Leave(2)
	if n := tr.Members()[waveKey]; n != 1 {
		t.Fatalf("after Leave: %d members", n)
	}
	c.add(time.Minute)
	tr.Exchange(member(3), req(ds, 0))
	if n := tr.Members()[waveKey]; n != 1 {
		t.Fatalf("after a minute of silence from agent 1: %d members, want only the new one", n)
	}
	r := req(nil, 0)
	r.Leaving = true
	tr.Exchange(member(3), r)
	if _, ok := tr.Members()[waveKey]; ok {
		t.Fatal("wave left behind with no members")
	}
}

// TestAssignmentsExpire: an assignment never reported frees metald's
// slot after AssignTimeout.
func TestAssignmentsExpire(t *testing.T) {
	c := newClock()
	tr := New(Config{SeedSlots: 1, AssignTimeout: time.Minute, Stale: time.Hour}, c.now)
	ds := digests(2)
	tr.Exchange(member(1), req(ds, 1))
	if r, _ := tr.Exchange(member(2), req(ds, 1)); len(r.Assign) != 0 {
		t.Fatalf("slot taken, got %+v", r)
	}
	c.add(2 * time.Minute)
	if r, _ := tr.Exchange(member(2), req(nil, 1)); len(r.Assign) != 1 {
		t.Fatalf("after the assignment expired: %+v, want a chunk", r)
	}
}

// TestWaveEgress simulates a wave of 16 agents over 64 chunks in rounds
// (every fetch takes one round): every agent ends with every chunk and
// metald serves each chunk about once, not 16 times.
func TestWaveEgress(t *testing.T) {
	for _, n := range []int{1, 4, 16} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			c := newClock()
			tr := New(Config{}, c.now)
			ds := digests(64)
			type state struct {
				have     []string
				inflight []agentapi.SwarmAssignment
				need     int
			}
			agents := make([]*state, n)
			for i := range agents {
				agents[i] = &state{need: len(ds)}
			}
			rounds := 0
			for ; rounds < 1000; rounds++ {
				done := 0
				for i, a := range agents {
					if a.need == 0 {
						done++
						continue
					}
					r := req(nil, 4-len(a.inflight))
					if rounds == 0 {
						r.Need = ds
					}
					for _, in := range a.inflight {
						r.Have = append(r.Have, in.Digest)
						a.need--
					}
					a.inflight = nil
					r.Want = 4
					resp, _ := tr.Exchange(member(int64(i+1)), r)
					a.inflight = resp.Assign
				}
				if done == n {
					break
				}
				c.add(time.Second)
			}
			st := tr.Stats()
			if st.FromMetald > int64(len(ds))+int64(n) {
				t.Errorf("metald served %d chunks of %d for %d agents, want about one copy", st.FromMetald, len(ds), n)
			}
			if st.FromMetald+st.FromPeers != int64(n*len(ds)) {
				t.Errorf("assigned %d+%d, want %d", st.FromMetald, st.FromPeers, n*len(ds))
			}
			t.Logf("%d agents: %d rounds, %d chunks from metald, %d from peers", n, rounds, st.FromMetald, st.FromPeers)
		})
	}
}

// TestStayWhileSoleHolder: an agent with every chunk is told to stay
// while it holds the only copy of a chunk another member needs, and to
// go once a second copy exists.
func TestStayWhileSoleHolder(t *testing.T) {
	c := newClock()
	tr := New(Config{}, c.now)
	ds := digests(2)
	r := req(ds, 0)
	r.Have = ds
	if got, _ := tr.Exchange(member(1), r); got.Stay {
		t.Fatalf("alone in the wave: %+v, want to go", got)
	}
	tr.Exchange(member(2), req(ds, 0))
	if got, _ := tr.Exchange(member(1), req(nil, 0)); !got.Stay || got.RetryAfterMillis == 0 {
		t.Fatalf("sole holder of chunks agent 2 needs: %+v, want stay", got)
	}
	r = req(nil, 0)
	r.Have = ds
	tr.Exchange(member(2), r)
	if got, _ := tr.Exchange(member(1), req(nil, 0)); got.Stay {
		t.Fatalf("agent 2 holds everything too: %+v, want to go", got)
	}
}

// TestPeerSlotsWithinOneAnswer: one answer never assigns a peer more
// fetches than its slots, and a busy answer (503) is not held against
// the peer.
func TestPeerSlotsWithinOneAnswer(t *testing.T) {
	c := newClock()
	tr := New(Config{PeerSlots: 2}, c.now)
	ds := digests(6)
	r := req(ds[:1], 0)
	r.Have = ds
	tr.Exchange(member(1), r)
	got, _ := tr.Exchange(member(2), req(ds, 6))
	if len(got.Assign) != 2 {
		t.Fatalf("one holder with 2 slots: %d assignments, want 2", len(got.Assign))
	}
	f := req(nil, 1)
	f.Failed = []agentapi.SwarmFailure{{Digest: got.Assign[0].Digest, Peer: peerAddr(1), Busy: true, Error: "503"}}
	got, drops := tr.Exchange(member(2), f)
	if len(drops) != 0 || len(got.Assign) != 1 || len(got.Assign[0].Peers) != 1 || got.Assign[0].Peers[0].Addr != peerAddr(1) {
		t.Fatalf("after a busy answer: %+v %+v, want the same peer offered again", got, drops)
	}
}

// TestStayForJoining: an agent with every chunk stays while machines of
// the wave (its unfinished jobs) have not joined yet.
func TestStayForJoining(t *testing.T) {
	tr := New(Config{}, newClock().now)
	ds := digests(2)
	r := req(ds[:1], 0)
	r.Have = ds
	tr.Exchange(member(1), r)
	m := member(1)
	m.Expected = []int64{1, 2, 3}
	if got, _ := tr.Exchange(m, req(nil, 0)); !got.Stay {
		t.Fatalf("two machines of the wave not joined yet: %+v, want stay", got)
	}
	// Both join (and need nothing from agent 1 alone: they hold it all).
	for j := int64(2); j <= 3; j++ {
		r := req(ds, 0)
		r.Have = ds
		tr.Exchange(member(j), r)
	}
	if got, _ := tr.Exchange(m, req(nil, 0)); got.Stay {
		t.Fatalf("every machine of the wave joined and holds everything: %+v, want to go", got)
	}
	if got, _ := tr.Exchange(member(1), req(nil, 0)); got.Stay {
		t.Fatalf("nobody joining, nobody needing: %+v, want to go", got)
	}
}
