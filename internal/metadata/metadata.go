// Package metadata is the one home of what the installed OS's cloud-init
// gets at first boot: the content of the config drive that the agent
// writes onto the disk (render.go: NoCloud's CIDATA or OpenStack's
// CONFIG-2), and the same data over HTTP — NoCloud at
// /nocloud/<machine>/{meta-data,user-data,vendor-data,network-config}
// and EC2's instance metadata at /latest/… and /<version>/… (ec2.go).
//
// Over HTTP a machine's data goes only to the machine: a request must
// come from the address metald reserved or leased for it (internal/trust),
// and user-data only while the machine is provisioning or provisioned.
// Everything else is refused (403, or 404 for an address that is no
// machine's), counted in metald_metadata_refused_total and evented as
// security.metadata_refused (throttled per source).
package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/internal/trust"
	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// Store is what metadata needs from the inventory.
type Store interface {
	trust.Store
	GetMachine(ctx context.Context, name string) (inventory.Machine, error)
	ListJobs(ctx context.Context, machine string, activeOnly bool, limit int) ([]inventory.Job, error)
	AppendEvent(ctx context.Context, e inventory.Event) (inventory.Event, error)
}

// Config is the metadata service's configuration.
type Config struct {
	Network Network
}

// Service answers metadata requests.
type Service struct {
	cfg     Config
	store   Store
	binder  *trust.Binder
	log     *slog.Logger
	refused *trust.Refusals
	tokens  *tokens
}

// New returns the metadata service; its counters go to reg.
func New(cfg Config, store Store, reg prometheus.Registerer, log *slog.Logger) *Service {
	return &Service{cfg: cfg, store: store, binder: trust.New(store), log: log, tokens: newTokens(),
		refused: trust.NewRefusals("metadata",
			"Metadata requests refused, by reason (foreign: not from the machine's address; state: user-data outside provisioning; unknown: no machine at the address; token: bad IMDSv2 token).",
			store, reg, log)}
}

// ConfigDrive renders the drive the agent writes for provision job
// jobID of m (nil for "none"), with the service's network.
func (s *Service) ConfigDrive(m inventory.Machine, jobID int64, ci CloudInit) (*agentapi.ConfigDrive, error) {
	return ConfigDrive(m, jobID, ci, s.cfg.Network)
}

// Routes contributes /nocloud/… and the EC2 paths (unauthenticated, as
// cloud-init expects: the source address is the credential).
func (s *Service) Routes(r gin.IRouter) {
	r.GET("/nocloud/:machine/:item", s.nocloud)
	s.ec2Routes(r)
}

// lastProvision is the machine's latest provision job and its cloud-init
// parameters.
func (s *Service) lastProvision(ctx context.Context, machine string) (int64, CloudInit) {
	jobs, err := s.store.ListJobs(ctx, machine, false, 20)
	if err != nil {
		return 0, CloudInit{}
	}
	for _, j := range jobs {
		if j.Kind != inventory.JobProvision {
			continue
		}
		var ci CloudInit
		_ = json.Unmarshal(j.Params, &ci)
		return j.ID, ci
	}
	return 0, CloudInit{}
}

func (s *Service) seedFor(ctx context.Context, m inventory.Machine) seed {
	id, ci := s.lastProvision(ctx, m.Name)
	return newSeed(m, id, ci)
}

// userDataAllowed: user-data exists for the OS being provisioned or
// installed, never for a machine that has been wiped or is idle.
func userDataAllowed(m inventory.Machine) bool {
	return m.State == inventory.StateProvisioning || m.State == inventory.StateProvisioned
}

// refuse answers status, counts the reason and records a throttled
// security event.
func (s *Service) refuse(c *gin.Context, status int, reason, machine string, err error) {
	s.refused.Refuse(c.Request.Context(), reason, machine, trust.Source(c.Request.RemoteAddr), c.Request.Method+" "+c.Request.URL.Path, err)
	c.String(status, "%v\n", err)
}

func (s *Service) nocloud(c *gin.Context) {
	ctx := c.Request.Context()
	m, err := s.store.GetMachine(ctx, c.Param("machine"))
	if err != nil {
		// The same answer as a foreign request, so that strangers cannot
		// enumerate machine names.
		s.refuse(c, http.StatusForbidden, "unknown", "", fmt.Errorf("%w: no metadata for %s here", trust.ErrForeign, trust.Source(c.Request.RemoteAddr)))
		return
	}
	if err := s.binder.Check(ctx, m, trust.Source(c.Request.RemoteAddr)); err != nil {
		s.refuse(c, http.StatusForbidden, "foreign", m.Name, err)
		return
	}
	sd := s.seedFor(ctx, m)
	switch c.Param("item") {
	case "meta-data":
		c.String(http.StatusOK, "%s", sd.metaData())
	case "user-data":
		if !userDataAllowed(m) {
			s.refuse(c, http.StatusForbidden, "state", m.Name, fmt.Errorf("machine %s is %s: user-data is served only while provisioning or provisioned", m.Name, m.State))
			return
		}
		c.String(http.StatusOK, "%s", sd.userData())
	case "vendor-data":
		c.String(http.StatusOK, "")
	case "network-config":
		c.String(http.StatusOK, "%s", sd.networkConfig(s.cfg.Network))
	default:
		c.String(http.StatusNotFound, "no such item %s\n", c.Param("item"))
	}
}

// bySource finds the machine a request comes from, refusing it when the
// address is no machine's.
func (s *Service) bySource(c *gin.Context) (inventory.Machine, netip.Addr, bool) {
	src := trust.Source(c.Request.RemoteAddr)
	m, err := s.binder.MachineAt(c.Request.Context(), src)
	if err != nil {
		status := http.StatusNotFound
		if !errors.Is(err, inventory.ErrNotFound) {
			status = http.StatusInternalServerError
		}
		s.refuse(c, status, "unknown", "", err)
		return m, src, false
	}
	return m, src, true
}
