package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/internal/trust"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// AgentGuard is how /agent/v1 trusts the provisioning network.
type AgentGuard struct {
	// LeaseBound: requests for a machine are accepted only from the
	// address metald reserved for it or leased to one of its MACs (full
	// DHCP mode). Otherwise (proxy or no DHCP) the first address to claim
	// a job's task owns that job.
	LeaseBound bool
	// PerAddress and PerMAC limit register, task polls and inventory
	// (requests a second, bursts of ten times that); PerDiscovery limits
	// the enrolment of unknown machines over all sources. Zero takes the
	// defaults, negative disables.
	PerAddress, PerMAC, PerDiscovery float64
	// Metrics receives metald_agent_refused_total (nil: not exported).
	Metrics prometheus.Registerer
}

// withDefaults returns g with its zero limits filled.
func (g AgentGuard) withDefaults() AgentGuard {
	for _, f := range []struct {
		v   *float64
		def float64
	}{{&g.PerAddress, 5}, {&g.PerMAC, 2}, {&g.PerDiscovery, 2}} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	return g
}

// guard holds the limiters and the refusal record.
type guard struct {
	cfg                      AgentGuard
	binder                   *trust.Binder
	refused                  *trust.Refusals
	byAddr, byMAC, discovery *trust.Limiter
}

func newGuard(cfg AgentGuard, store Store, log *slog.Logger) *guard {
	cfg = cfg.withDefaults()
	burst := func(r float64) int { return max(1, int(10*r)) }
	return &guard{cfg: cfg, binder: trust.New(store),
		refused: trust.NewRefusals("agent",
			"Agent API requests refused, by reason (foreign: not from the machine's or the job's address; token: missing, unknown or revoked task token; rate: over a rate limit; job: inventory outside an inspect or provision).",
			store, cfg.Metrics, log),
		byAddr:    trust.NewLimiter(cfg.PerAddress, burst(cfg.PerAddress)),
		byMAC:     trust.NewLimiter(cfg.PerMAC, burst(cfg.PerMAC)),
		discovery: trust.NewLimiter(cfg.PerDiscovery, burst(cfg.PerDiscovery)),
	}
}

// Refusal reasons (the label of metald_agent_refused_total).
const (
	refusedForeign = "foreign" // not from the machine's (or the job's) address
	refusedToken   = "token"   // missing, unknown or revoked task token
	refusedRate    = "rate"    // over a rate limit
	refusedJob     = "job"     // inventory outside an inspect or provision
)

// refuse records a refused agent request and answers it.
func (s *Service) refuse(c *gin.Context, status int, reason, machine string, err error) {
	s.guard.refused.Refuse(c.Request.Context(), reason, machine, trust.Source(c.Request.RemoteAddr), c.Request.Method+" "+c.Request.URL.Path, err)
	if status == http.StatusTooManyRequests {
		c.Header("Retry-After", "1")
	}
	agentError(c, status, err)
}

// limited refuses with 429 when key is over lim.
func (s *Service) limited(c *gin.Context, lim *trust.Limiter, key, machine string) bool {
	if lim.Allow(key) {
		return false
	}
	s.refuse(c, http.StatusTooManyRequests, refusedRate, machine, fmt.Errorf("too many agent requests for %s: slow down", key))
	return true
}

// admit checks that src may speak for machine m: its leased or reserved
// address in lease-bound mode; in any mode, the address that claimed m's
// running job if one did.
func (s *Service) admit(ctx context.Context, m inventory.Machine, src netip.Addr) error {
	if s.guard.cfg.LeaseBound {
		if err := s.guard.binder.Check(ctx, m, src); err != nil {
			return err
		}
	}
	j, err := s.store.ActiveJob(ctx, m.Name)
	if errors.Is(err, inventory.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	return ownedBy(j, src)
}

// ownedBy checks that src claimed job j (or that nobody has yet).
func ownedBy(j inventory.Job, src netip.Addr) error {
	if j.AgentAddr == "" || j.AgentAddr == src.String() {
		return nil
	}
	return fmt.Errorf("%w: %s asked for job %d of machine %s, whose agent is at %s", trust.ErrForeign, src, j.ID, j.Machine, j.AgentAddr)
}

// admitOrRefuse is admit answering 403 (or 500) itself.
func (s *Service) admitOrRefuse(c *gin.Context, m inventory.Machine) bool {
	err := s.admit(c.Request.Context(), m, trust.Source(c.Request.RemoteAddr))
	switch {
	case err == nil:
		return true
	case errors.Is(err, trust.ErrForeign):
		s.refuse(c, http.StatusForbidden, refusedForeign, m.Name, err)
	default:
		agentError(c, statusFor(err), err)
	}
	return false
}

// discoverable checks that an unknown MAC may be enrolled from src: in
// lease-bound mode src must hold metald's lease for that MAC.
func (s *Service) discoverable(ctx context.Context, mac string, src netip.Addr) error {
	if !s.guard.cfg.LeaseBound {
		return nil
	}
	return s.guard.binder.Check(ctx, inventory.Machine{Name: "(unknown " + mac + ")", MACs: []string{mac}}, src)
}
