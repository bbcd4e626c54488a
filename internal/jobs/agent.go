package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/internal/api"
	"github.com/metal-iaas/metal/internal/discovery"
	"github.com/metal-iaas/metal/internal/trust"
	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// pollSeconds is how often an idle agent asks for work.
const pollSeconds = 3

// AgentRoutes contributes /agent/v1. Register and task polls identify the
// machine by MAC and are accepted only from the machine's address
// (AgentGuard); handing out a task claims its job for the asking address
// with a fresh token that revokes the previous one. Inventory, progress
// and result need that token, from that address.
func (s *Service) AgentRoutes(r gin.IRouter) {
	g := r.Group(agentapi.PathPrefix)
	g.POST("/register", s.register)
	g.GET("/task", s.poll)
	g.POST("/inventory", s.inventory)
	g.POST("/progress", s.progress)
	g.POST("/result", s.result)
	g.POST(strings.TrimPrefix(agentapi.PathSwarm, agentapi.PathPrefix), s.swarmExchange)
}

func agentError(c *gin.Context, status int, err error) {
	c.AbortWithStatusJSON(status, agentapi.Error{Error: err.Error()})
}

// statusFor is the HTTP status of err, from the one map of errors to HTTP
// that /api/v1 answers through too (api.StatusOf).
func statusFor(err error) int {
	status, _ := api.StatusOf(err)
	return status
}

func decodeAgent(c *gin.Context, v interface{ Validate() error }) error {
	return decodeAgentMax(c, v, 4<<20)
}

// decodeAgentMax is decodeAgent for a body of up to limit bytes.
func decodeAgentMax(c *gin.Context, v interface{ Validate() error }, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", agentapi.ErrInvalid, err)
	}
	return v.Validate()
}

func (s *Service) register(c *gin.Context) {
	ctx := c.Request.Context()
	src := trust.Source(c.Request.RemoteAddr)
	if s.limited(c, s.guard.byAddr, src.String(), "") {
		return
	}
	var req agentapi.RegisterRequest
	if err := decodeAgent(c, &req); err != nil {
		agentError(c, statusFor(err), err)
		return
	}
	mac, _ := inventory.NormalizeMAC(req.MAC)
	m, err := s.store.MachineByMAC(ctx, mac)
	if errors.Is(err, inventory.ErrNotFound) && s.cfg.DiscoverUnknown {
		if err := s.discoverable(ctx, mac, src); err != nil {
			s.refuse(c, http.StatusForbidden, refusedForeign, "", err)
			return
		}
		if s.limited(c, s.guard.discovery, "discovery", "") {
			return
		}
		m, err = discovery.Machine(ctx, s.store, mac, "", discovery.ByAgent)
	}
	if err != nil {
		agentError(c, statusFor(err), err)
		return
	}
	// The per-MAC limit counts only admitted requests, so that a stranger
	// cannot spend a machine's allowance.
	if !s.admitOrRefuse(c, m) || s.limited(c, s.guard.byMAC, mac, m.Name) {
		return
	}
	s.event(ctx, m.Name, "agent.registered", fmt.Sprintf("agent %s registered from %s", req.AgentVersion, src),
		map[string]any{"mac": mac, "disks": len(req.Inventory.Disks), "nics": len(req.Inventory.NICs)})
	s.assign(c, m.Name)
}

func (s *Service) poll(c *gin.Context) {
	src := trust.Source(c.Request.RemoteAddr)
	if s.limited(c, s.guard.byAddr, src.String(), "") {
		return
	}
	mac, err := inventory.NormalizeMAC(c.Query(agentapi.QueryMAC))
	if err != nil {
		agentError(c, http.StatusBadRequest, err)
		return
	}
	m, err := s.store.MachineByMAC(c.Request.Context(), mac)
	if err != nil {
		agentError(c, statusFor(err), err)
		return
	}
	if !s.admitOrRefuse(c, m) || s.limited(c, s.guard.byMAC, mac, m.Name) {
		return
	}
	s.assign(c, m.Name)
}

// assign answers with the machine's task, moving a job that waited for
// the agent into its task phase. Every answer with a task claims the job
// for the asking address with a fresh token (an agent that restarted
// asks again; the token it had stops working).
func (s *Service) assign(c *gin.Context, machine string) {
	ctx := c.Request.Context()
	out := agentapi.Assignment{Version: agentapi.Version, Machine: machine, PollIntervalSeconds: pollSeconds}
	j, err := s.store.ActiveJob(ctx, machine)
	if errors.Is(err, inventory.ErrNotFound) {
		c.JSON(http.StatusOK, out)
		return
	} else if err != nil {
		agentError(c, statusFor(err), err)
		return
	}
	if j.Phase == PhaseFinishing {
		c.JSON(http.StatusOK, out) // done; metald is rebooting it
		return
	}
	src := trust.Source(c.Request.RemoteAddr)
	token, err := s.store.ClaimJobToken(ctx, j.ID, src.String())
	if errors.Is(err, inventory.ErrConflict) {
		s.refuse(c, http.StatusForbidden, refusedForeign, machine, fmt.Errorf("%w: %v", trust.ErrForeign, err))
		return
	} else if err != nil {
		agentError(c, statusFor(err), err)
		return
	}
	reclaimed := false
	switch j.Phase {
	case PhasePower, PhaseBooting:
		phase := taskPhase(j.Kind)
		if err := s.setPhase(ctx, j, phase, s.cfg.ProgressTimeout, "agent is up at "+src.String()+"; task handed out"); err != nil {
			agentError(c, statusFor(err), err)
			return
		}
	default:
		reclaimed = true
		s.event(ctx, machine, "agent.reclaimed", fmt.Sprintf("agent at %s asked for job %d again (restarted): fresh task token, the previous one revoked", src, j.ID),
			map[string]any{"job": j.ID, "phase": j.Phase})
	}
	task, err := s.task(ctx, j, token, reclaimed)
	if err != nil {
		agentError(c, statusFor(err), err)
		return
	}
	out.Task = task
	c.JSON(http.StatusOK, out)
}

// task is job j's task for its agent. A task handed out again (the agent
// restarted mid-way) writes chunks with delta, so that what the disk
// already holds is kept.
func (s *Service) task(ctx context.Context, j inventory.Job, token string, reclaimed bool) (*agentapi.Task, error) {
	p, err := params(j)
	if err != nil {
		return nil, err
	}
	t := &agentapi.Task{ID: strconv.FormatInt(j.ID, 10), Token: token, RootDeviceHints: p.Hints}
	switch j.Kind {
	case inventory.JobProvision:
		t.Kind = agentapi.TaskProvision
		t.Image = &agentapi.Image{URL: p.ImageURL, SHA256: p.RawSHA256, VirtualSize: p.VirtualSize}
		if p.ManifestDigest != "" {
			t.Image.ManifestURL, t.Image.ManifestDigest = p.ImageURL+"/manifest", p.ManifestDigest
			t.Image.ChunkURL, t.Image.Delta = p.ChunkURL, p.Delta || reclaimed
			if s.cfg.Swarm != nil {
				sw := s.cfg.Swarm.Agent
				t.Image.Swarm = &sw
			}
		}
		m, err := s.store.GetMachine(ctx, j.Machine)
		if err != nil {
			return nil, err
		}
		if t.ConfigDrive, err = s.cfg.Seeds.ConfigDrive(m, j.ID, p.CloudInit); err != nil {
			return nil, fmt.Errorf("job %d: config drive: %w", j.ID, err)
		}
	case inventory.JobDeprovision:
		t.Kind = agentapi.TaskWipe
	default:
		t.Kind = agentapi.TaskInspect
	}
	return t, nil
}

// jobFor authenticates a task token, checks it names this task and that
// the request comes from the address that claimed the job.
func (s *Service) jobFor(c *gin.Context, taskID string) (inventory.Job, bool) {
	tok, _ := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	j, err := s.store.JobByToken(c.Request.Context(), strings.TrimSpace(tok))
	if err != nil {
		s.refuse(c, http.StatusUnauthorized, refusedToken, "", errors.New("task token missing, unknown or revoked"))
		return j, false
	}
	if strconv.FormatInt(j.ID, 10) != taskID {
		agentError(c, http.StatusForbidden, fmt.Errorf("token is for task %d, not %s", j.ID, taskID))
		return j, false
	}
	if err := ownedBy(j, trust.Source(c.Request.RemoteAddr)); err != nil {
		s.refuse(c, http.StatusForbidden, refusedForeign, j.Machine, err)
		return j, false
	}
	return j, true
}

// inventory records the hardware an agent reports for an inspect or a
// provision.
func (s *Service) inventory(c *gin.Context) {
	var rep agentapi.InventoryReport
	if err := decodeAgent(c, &rep); err != nil {
		agentError(c, statusFor(err), err)
		return
	}
	j, ok := s.jobFor(c, rep.TaskID)
	if !ok {
		return
	}
	if j.Kind != inventory.JobInspect && j.Kind != inventory.JobProvision {
		s.refuse(c, http.StatusConflict, refusedJob, j.Machine, fmt.Errorf("job %d is a %s: hardware is recorded only by an inspect or a provision", j.ID, j.Kind))
		return
	}
	ctx := c.Request.Context()
	m, err := s.store.GetMachine(ctx, j.Machine)
	if err != nil {
		agentError(c, statusFor(err), err)
		return
	}
	hw, err := json.Marshal(rep.Inventory)
	if err != nil {
		agentError(c, http.StatusBadRequest, err)
		return
	}
	patch := inventory.MachinePatch{Hardware: hw}
	if m.UUID == "" && rep.Inventory.DMI.SystemUUID != "" {
		u := strings.ToLower(rep.Inventory.DMI.SystemUUID)
		patch.UUID = &u
	}
	if m.Serial == "" && rep.Inventory.DMI.SystemSerial != "" {
		sn := rep.Inventory.DMI.SystemSerial
		patch.Serial = &sn
	}
	if _, err := s.store.UpdateMachine(ctx, m.Name, patch); err != nil {
		agentError(c, statusFor(err), err)
		return
	}
	s.event(ctx, m.Name, "agent.inventory", fmt.Sprintf("hardware reported by the agent of job %d", j.ID),
		map[string]any{"job": j.ID, "disks": len(rep.Inventory.Disks), "nics": len(rep.Inventory.NICs), "memory_bytes": rep.Inventory.MemoryBytes})
	c.Status(http.StatusNoContent)
}

func (s *Service) progress(c *gin.Context) {
	var p agentapi.Progress
	if err := decodeAgent(c, &p); err != nil {
		agentError(c, statusFor(err), err)
		return
	}
	j, ok := s.jobFor(c, p.TaskID)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	logs := p.Log
	p.Log = nil
	raw, _ := json.Marshal(p)
	if err := s.store.UpdateJob(ctx, j.ID, j.Phase, raw, s.now().Add(s.cfg.ProgressTimeout), nil); err != nil {
		agentError(c, statusFor(err), err)
		return
	}
	for _, line := range logs {
		s.event(ctx, j.Machine, "agent.log", line, map[string]any{"job": j.ID})
	}
	c.Status(http.StatusNoContent)
}

func (s *Service) result(c *gin.Context) {
	var r agentapi.Result
	if err := decodeAgent(c, &r); err != nil {
		agentError(c, statusFor(err), err)
		return
	}
	j, ok := s.jobFor(c, r.TaskID)
	if !ok {
		return
	}
	ctx := context.WithoutCancel(c.Request.Context())
	s.leaveSwarm(j.ID)
	p, err := params(j)
	if err != nil {
		agentError(c, http.StatusInternalServerError, err)
		return
	}
	if r.Success && j.Kind == inventory.JobProvision && p.RawSHA256 != "" && r.SHA256 != p.RawSHA256 {
		r.Success, r.Error = false, fmt.Sprintf("disk SHA-256 %s does not match the image's %s", r.SHA256, p.RawSHA256)
	}
	if r.Success && r.ManifestDigest != "" && r.ManifestDigest != p.ManifestDigest {
		r.Success, r.Error = false, fmt.Sprintf("agent verified chunk manifest %s, not the image's %s", r.ManifestDigest, p.ManifestDigest)
	}
	data := map[string]any{"job": j.ID, "disk": r.Disk, "sha256": r.SHA256, "bytes": r.BytesWritten, "seconds": r.Seconds}
	if r.ManifestDigest != "" {
		data["manifest"], data["bytes_skipped"] = r.ManifestDigest, r.BytesSkipped
		data["bytes_from_peers"], data["bytes_from_metald"], data["bytes_served"] = r.BytesFromPeers, r.BytesFromServer, r.BytesServed
	}
	if !r.Success {
		s.event(ctx, j.Machine, "agent.failed", r.Error, data)
		s.fail(ctx, j, fmt.Sprintf("%s failed in phase %s: %s", j.Kind, j.Phase, r.Error))
		c.JSON(http.StatusOK, agentapi.ResultResponse{After: agentapi.AfterWait})
		return
	}
	s.event(ctx, j.Machine, "agent.succeeded", fmt.Sprintf("%s done on %s", j.Kind, orNone(r.Disk)), data)
	if err := s.setPhase(ctx, j, PhaseFinishing, s.cfg.FinishTimeout, "agent done; finishing"); err != nil {
		agentError(c, statusFor(err), err)
		return
	}
	reason := j.Kind + " succeeded"
	if j.Kind == inventory.JobProvision {
		reason = fmt.Sprintf("image %s written to %s and verified", p.Image, orNone(r.Disk))
	}
	after := agentapi.AfterWait
	if !p.HasBMC {
		// Nobody else can reboot it: the agent does, into the installed
		// OS (the boot script for a provisioned machine boots the disk).
		after = agentapi.AfterReboot
		if j.Kind != inventory.JobProvision {
			after = agentapi.AfterPowerOff
		}
	}
	c.JSON(http.StatusOK, agentapi.ResultResponse{After: after})
	s.async(func() { s.finishStep(s.steps.ctx, j, p, reason) })
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
