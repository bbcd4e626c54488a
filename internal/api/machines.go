package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

func (s *Server) listMachines(c *gin.Context) {
	var f inventory.MachineFilter
	if st := c.Query("state"); st != "" {
		state, err := inventory.ParseState(st)
		if err != nil {
			s.abort(c, err)
			return
		}
		f.State = state
	}
	tags, err := parseTagFilters(c.QueryArray("tag"))
	if err != nil {
		s.abort(c, err)
		return
	}
	f.Tags = tags
	ms, err := s.store.ListMachines(c.Request.Context(), f)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, toMachines(ms))
}

// parseTagFilters turns ["k=v", ...] into a map.
func parseTagFilters(in []string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, t := range in {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: tag filter %q: want key=value", errBadRequest, t)
		}
		out[k] = v
	}
	return out, nil
}

func (s *Server) createMachine(c *gin.Context) {
	var req metalapi.MachineCreate
	if err := decode(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if err := checkBMC(req.BMC); err != nil {
		s.abort(c, err)
		return
	}
	m, err := s.store.CreateMachine(c.Request.Context(), fromMachineCreate(req))
	if err != nil {
		s.abort(c, err)
		return
	}
	s.log.Info("machine enrolled", "machine", m.Name, "macs", m.MACs)
	c.Header("Location", metalapi.PathMachines+"/"+m.Name)
	c.JSON(http.StatusCreated, toMachine(m))
}

func (s *Server) getMachine(c *gin.Context) {
	m, err := s.store.GetMachine(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, toMachine(m))
}

func (s *Server) patchMachine(c *gin.Context) {
	var req metalapi.MachinePatch
	if err := decode(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if req.BMC != nil {
		if err := checkBMC(*req.BMC); err != nil {
			s.abort(c, err)
			return
		}
	}
	ctx := c.Request.Context()
	name := c.Param("name")
	var to inventory.State
	if req.State != nil {
		st, err := inventory.ParseState(*req.State)
		if err != nil {
			s.abort(c, err)
			return
		}
		to = st
		// Check before changing anything, so a refused transition leaves
		// the other fields unchanged too.
		cur, err := s.store.GetMachine(ctx, name)
		if err != nil {
			s.abort(c, err)
			return
		}
		if err := inventory.CheckTransition(cur.State, to); err != nil {
			s.abort(c, fmt.Errorf("machine %q: %w", name, err))
			return
		}
	}
	m, err := s.store.UpdateMachine(ctx, name, fromMachinePatch(req))
	if err != nil {
		s.abort(c, err)
		return
	}
	if to != "" && to != m.State {
		reason := req.Reason
		if reason == "" {
			reason = "set by operator"
		}
		if m, err = s.store.Transition(ctx, name, to, reason); err != nil {
			s.abort(c, err)
			return
		}
	}
	c.JSON(http.StatusOK, toMachine(m))
}

func (s *Server) deleteMachine(c *gin.Context) {
	if err := s.store.DeleteMachine(c.Request.Context(), c.Param("name")); err != nil {
		s.abort(c, err)
		return
	}
	s.log.Info("machine removed", "machine", c.Param("name"))
	c.Status(http.StatusNoContent)
}
