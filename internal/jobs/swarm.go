package jobs

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/internal/swarm"
	"github.com/metal-iaas/metal/internal/trust"
	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// Tracker is the peer-to-peer chunk tracker (swarm.Tracker).
type Tracker interface {
	Exchange(m swarm.Member, req agentapi.SwarmRequest) (agentapi.SwarmResponse, []swarm.Drop)
	Leave(job int64)
}

// SwarmConfig turns on peer-to-peer chunk sharing for provisions by
// chunks: Agent is what every such task tells its agent (port, upload
// bound, connections), Tracker answers its PathSwarm requests.
type SwarmConfig struct {
	Agent   agentapi.Swarm
	Tracker Tracker
}

// maxSwarmBody bounds a swarm request: its Need list names every chunk
// of the image once (67 bytes each: 32 MiB is a 2 TiB image in 4 MiB
// chunks).
const maxSwarmBody = 32 << 20

// swarmExchange serves POST PathSwarm: the agent of a provision by
// chunks, authenticated by its task token from the address that claimed
// the job, trades what it holds for what to fetch next. Its peers learn
// its address from this request's source, never from what it claims.
func (s *Service) swarmExchange(c *gin.Context) {
	var req agentapi.SwarmRequest
	if err := decodeAgentMax(c, &req, maxSwarmBody); err != nil {
		agentError(c, statusFor(err), err)
		return
	}
	j, ok := s.jobFor(c, req.TaskID)
	if !ok {
		return
	}
	if s.cfg.Swarm == nil {
		agentError(c, http.StatusNotFound, fmt.Errorf("peer-to-peer chunk sharing is off on this metald"))
		return
	}
	p, err := params(j)
	if err != nil {
		agentError(c, http.StatusInternalServerError, err)
		return
	}
	if j.Kind != inventory.JobProvision || p.ManifestDigest == "" || j.Phase != PhaseWriting {
		s.refuse(c, http.StatusConflict, refusedJob, j.Machine,
			fmt.Errorf("job %d (%s, phase %s) is not writing chunks: no swarm", j.ID, j.Kind, j.Phase))
		return
	}
	ctx := c.Request.Context()
	m := swarm.Member{Job: j.ID, Machine: j.Machine, Wave: p.ManifestDigest, Addr: trust.Source(c.Request.RemoteAddr)}
	if req.Want == 0 && len(req.Need) == 0 && !req.Leaving {
		m.Expected = s.waveJobs(ctx, p.ManifestDigest)
	}
	resp, drops := s.cfg.Swarm.Tracker.Exchange(m, req)
	for _, d := range drops {
		kind := "swarm.peer_dropped"
		if d.Corrupt {
			kind = "security.peer_corrupt"
		}
		s.event(ctx, d.Machine, kind, fmt.Sprintf("peer %s (job %d) dropped from the wave of manifest %.12s, reported by %s: %s",
			d.Peer, d.Job, d.Wave, d.ReportedBy, d.Reason),
			map[string]any{"job": d.Job, "peer": d.Peer, "reported_by": d.ReportedBy, "manifest": d.Wave, "corrupt": d.Corrupt})
	}
	c.JSON(http.StatusOK, resp)
}

// leaveSwarm takes a job's agent out of its wave (its task ended).
func (s *Service) leaveSwarm(job int64) {
	if s.cfg.Swarm != nil {
		s.cfg.Swarm.Tracker.Leave(job)
	}
}

// waveJobs lists the provisions of the wave not finished yet: machines
// powering on or booting, or whose agents write (joined the tracker or
// about to); an agent that has every chunk stays a while for those that
// have not joined (SwarmResponse.Stay).
func (s *Service) waveJobs(ctx context.Context, wave string) []int64 {
	js, err := s.store.ListJobs(ctx, "", true, 1000)
	if err != nil {
		return nil
	}
	var ids []int64
	for _, j := range js {
		if j.Kind != inventory.JobProvision || (j.Phase != PhasePower && j.Phase != PhaseBooting && j.Phase != PhaseWriting) {
			continue
		}
		if p, err := params(j); err == nil && p.ManifestDigest == wave {
			ids = append(ids, j.ID)
		}
	}
	return ids
}
