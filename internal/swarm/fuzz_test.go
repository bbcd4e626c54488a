package swarm

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// FuzzExchange feeds the tracker arbitrary swarm requests (valid by
// agentapi's rules) from a few members, the clock moving: nothing
// panics, the wave's books never go negative, and an answer never
// assigns more than was wanted or a chunk the member did not need.
func FuzzExchange(f *testing.F) {
	ds := digests(3)
	for _, r := range []agentapi.SwarmRequest{
		{Need: ds, Want: 4, Port: 7000, Token: "0123456789abcdef"},
		{Have: ds[:1], Want: 2},
		{Failed: []agentapi.SwarmFailure{{Digest: ds[0], Peer: "10.0.0.2:7000", Corrupt: true}}},
		{Leaving: true},
	} {
		r.Version, r.TaskID = agentapi.Version, "1"
		b, _ := json.Marshal(r)
		f.Add(uint8(1), uint8(0), b)
	}
	f.Fuzz(func(t *testing.T, job, tick uint8, body []byte) {
		var req agentapi.SwarmRequest
		if json.Unmarshal(body, &req) != nil || req.Validate() != nil {
			return
		}
		c := newClock()
		tr := New(Config{}, c.now)
		// Two honest members around the fuzzed one.
		for j := int64(2); j <= 3; j++ {
			r := req0(ds)
			r.Have = ds[:j-1]
			tr.Exchange(member(j), r)
		}
		c.add(time.Duration(tick) * time.Second)
		m := member(int64(job%4) + 1)
		resp, _ := tr.Exchange(m, req)
		if len(resp.Assign) > req.Want {
			t.Fatalf("%d assignments for want %d", len(resp.Assign), req.Want)
		}
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for _, w := range tr.waves {
			if w.seedBusy < 0 {
				t.Fatalf("seedBusy %d", w.seedBusy)
			}
			for _, p := range w.peers {
				if p.uploads < 0 || p.seeds < 0 {
					t.Fatalf("peer %d: uploads %d seeds %d", p.job, p.uploads, p.seeds)
				}
				for d := range p.inflight {
					if !p.need[d] {
						t.Fatalf("peer %d fetching %.8s it does not need", p.job, d)
					}
				}
			}
			for d, n := range w.fetching {
				if n <= 0 {
					t.Fatalf("fetching[%.8s] = %d", d, n)
				}
			}
		}
	})
}

func req0(need []string) agentapi.SwarmRequest { return req(need, 2) }
